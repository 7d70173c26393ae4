-- AlterTable
ALTER TABLE "VirtualMfaDevice" ADD COLUMN     "createdById" TEXT;

-- CreateIndex
CREATE INDEX "VirtualMfaDevice_createdById_userId_idx" ON "VirtualMfaDevice"("createdById", "userId");

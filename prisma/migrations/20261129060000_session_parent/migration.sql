-- AlterTable
ALTER TABLE "Session" ADD COLUMN     "parentId" UUID;

-- CreateIndex
CREATE INDEX "Session_parentId_idx" ON "Session"("parentId");

-- AddForeignKey
ALTER TABLE "Session" ADD CONSTRAINT "Session_parentId_fkey" FOREIGN KEY ("parentId") REFERENCES "Session"("id") ON DELETE SET NULL ON UPDATE CASCADE;

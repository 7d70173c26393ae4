-- AlterTable
ALTER TABLE "VirtualMfaDevice" ADD COLUMN     "burntSteps" INTEGER[] DEFAULT ARRAY[]::INTEGER[];

-- DropIndex
DROP INDEX "OutboxMessage_sentAt_id_idx";

-- AlterTable
ALTER TABLE "User" ADD COLUMN     "email" TEXT;

-- AlterTable
ALTER TABLE "OutboxMessage" ADD COLUMN     "containsSecret" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "failedAt" TIMESTAMP(3),
ADD COLUMN     "nextAttemptAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;

-- CreateIndex
CREATE INDEX "OutboxMessage_sentAt_nextAttemptAt_idx" ON "OutboxMessage"("sentAt", "nextAttemptAt");


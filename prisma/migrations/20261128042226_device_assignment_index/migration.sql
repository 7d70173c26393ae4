-- CreateIndex
CREATE INDEX "VirtualMfaDevice_accountId_userId_serialNumber_idx" ON "VirtualMfaDevice"("accountId", "userId", "serialNumber");


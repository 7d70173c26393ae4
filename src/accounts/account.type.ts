import { Field, ID, Int, ObjectType } from "type-graphql";
import { User } from "../users/user.type";
import { SessionKind } from "../auth/session-kind";
import type { SessionKindValue } from "../auth/session.service";

@ObjectType()
export class Account {
  @Field(() => ID, { description: "The 12-digit account id." })
  accountId!: string;

  @Field(() => String, { nullable: true })
  alias!: string | null;

  @Field(() => Int, { description: "How many MFA devices one user may have assigned (1–8)." })
  maxDevicesPerUser!: number;
}

@ObjectType({ description: "A bearer session. The token is shown only in this response." })
export class AuthSession {
  @Field({ description: "Send as `Authorization: Bearer <token>`." })
  token!: string;

  @Field()
  expiresAt!: Date;

  @Field()
  mfaAuthenticated!: boolean;

  @Field(() => SessionKind, { description: "How the session was obtained." })
  kind!: SessionKindValue;

  @Field(() => User)
  user!: User;
}

@ObjectType()
export class CreateAccountPayload {
  @Field(() => Account)
  account!: Account;

  @Field(() => User)
  rootUser!: User;

  @Field(() => AuthSession)
  session!: AuthSession;
}

export function toAccount(row: { id: string; alias: string | null; maxDevicesPerUser: number }) {
  return Object.assign(new Account(), {
    accountId: row.id,
    alias: row.alias,
    maxDevicesPerUser: row.maxDevicesPerUser,
  });
}

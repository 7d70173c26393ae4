import { Directive, Field, ID, ObjectType } from "type-graphql";
import { Connection } from "../common/connection.type";

@Directive(`@key(fields: "userId")`)
@ObjectType({ description: "An IAM user, or the account's root user." })
export class User {
  @Field(() => ID, { description: "AWS-style unique id (the account id for the root user)." })
  userId!: string;

  @Field()
  userName!: string;

  @Field()
  arn!: string;

  @Field()
  path!: string;

  @Field()
  createDate!: Date;

  @Field()
  isRoot!: boolean;

  @Field({ description: "Administrators manage every user of the account, as root does." })
  isAdministrator!: boolean;

  /** Not a GraphQL field: used by access checks and nested resolvers. */
  accountId!: string;
}

@ObjectType()
export class UserConnection extends Connection(User, "User") {}

export interface UserRow {
  id: string;
  accountId: string;
  userName: string;
  arn: string;
  path: string;
  createdAt: Date;
  isRoot: boolean;
  isAdmin: boolean;
}

export function toUser(row: UserRow): User {
  return Object.assign(new User(), {
    userId: row.id,
    userName: row.userName,
    arn: row.arn,
    path: row.path,
    createDate: row.createdAt,
    isRoot: row.isRoot,
    isAdministrator: row.isAdmin,
    accountId: row.accountId,
  });
}

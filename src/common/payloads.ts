import { Field, ObjectType } from "type-graphql";

@ObjectType({ description: "The answer to a mutation that deletes or detaches something." })
export class DeletePayload {
  @Field()
  deleted!: boolean;
}

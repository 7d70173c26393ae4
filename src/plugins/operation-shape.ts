/**
 * The shape of the operation about to run: how deep it nests, how many aliases it holds and how
 * many root fields it selects, with every fragment counted where it is spread. Each fragment is
 * measured once and reused, so a document whose fragments spread each other many times cannot
 * make the measuring itself expensive.
 */
import {
  Kind,
  type DocumentNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from "graphql";

export interface OperationShape {
  /** Deepest chain of fields; `{ user { userName } }` is 2. Introspection fields count 0. */
  depth: number;
  aliases: number;
  /** Fields at the top level, `__typename` aside. */
  rootFields: number;
}

interface Measure {
  depth: number;
  aliases: number;
  fields: number;
}

const shapes = new WeakMap<OperationDefinitionNode, OperationShape>();

export function operationShape(
  document: DocumentNode,
  operation: OperationDefinitionNode,
): OperationShape {
  const known = shapes.get(operation);
  if (known) return known;
  const fragments = fragmentsOf(document);
  const measured = new Map<string, Measure>();
  const inProgress = new Set<string>();

  function fragment(name: string): Measure {
    const done = measured.get(name);
    if (done) return done;
    const definition = fragments.get(name);
    // Unknown or cyclic spreads fail validation; measure them as empty rather than loop.
    if (!definition || inProgress.has(name)) return { depth: 0, aliases: 0, fields: 0 };
    inProgress.add(name);
    const result = selections(definition.selectionSet);
    inProgress.delete(name);
    measured.set(name, result);
    return result;
  }

  function selections(set: SelectionSetNode): Measure {
    const total: Measure = { depth: 0, aliases: 0, fields: 0 };
    for (const selection of set.selections) {
      let part: Measure;
      if (selection.kind === Kind.FIELD) {
        const introspection = selection.name.value.startsWith("__");
        const below = selection.selectionSet
          ? selections(selection.selectionSet)
          : { depth: 0, aliases: 0, fields: 0 };
        part = {
          depth: introspection ? 0 : 1 + below.depth,
          aliases: (selection.alias ? 1 : 0) + below.aliases,
          fields: selection.name.value === "__typename" ? 0 : 1,
        };
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        part = selections(selection.selectionSet);
      } else {
        part = fragment(selection.name.value);
      }
      total.depth = Math.max(total.depth, part.depth);
      total.aliases += part.aliases;
      total.fields += part.fields;
    }
    return total;
  }

  const root = selections(operation.selectionSet);
  const shape = { depth: root.depth, aliases: root.aliases, rootFields: root.fields };
  shapes.set(operation, shape);
  return shape;
}

/**
 * The names of the fields an operation selects at its top level, `__typename` aside, with
 * fragments spread at the top level followed (each once).
 */
export function rootFieldNames(
  document: DocumentNode,
  operation: OperationDefinitionNode,
): string[] {
  const fragments = fragmentsOf(document);
  const names: string[] = [];
  const spread = new Set<string>();
  const collect = (set: SelectionSetNode): void => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        if (selection.name.value !== "__typename") names.push(selection.name.value);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        collect(selection.selectionSet);
      } else if (!spread.has(selection.name.value)) {
        spread.add(selection.name.value);
        const definition = fragments.get(selection.name.value);
        if (definition) collect(definition.selectionSet);
      }
    }
  };
  collect(operation.selectionSet);
  return names;
}

function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION)
      fragments.set(definition.name.value, definition);
  }
  return fragments;
}

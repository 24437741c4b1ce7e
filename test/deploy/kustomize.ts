// A renderer for the subset of kustomize that deploy/kubernetes uses:
// `resources` (files and directories), `namespace`, and `patches` whose patch is
// a JSON 6902 operation list aimed at one kind and name. Anything else in a
// kustomization is an error, so a new feature cannot be silently ignored.
// YAML is read as Kubernetes reads it (YAML 1.1: `0400` is octal).
import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

export type Resource = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [key: string]: unknown }; [key: string]: unknown };

type Operation = { op: 'add' | 'remove' | 'replace' | 'test'; path: string; value?: unknown };

interface Kustomization {
  apiVersion?: string;
  kind?: string;
  namespace?: string;
  resources?: string[];
  patches?: { target: { kind: string; name: string }; patch: string }[];
}

const KNOWN_FIELDS = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'patches']);
// Kinds without a namespace, which the namespace field leaves alone.
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition']);

export function readYamlDocuments(path: string): unknown[] {
  return parseYamlText(readFileSync(path, 'utf8'), path);
}

/** Every document of a multi-document YAML text, as plain values. */
export function parseYamlText(text: string, source = 'YAML'): unknown[] {
  return parseAllDocuments(text, { version: '1.1' })
    .map((document) => {
      if (document.errors.length > 0) throw new Error(`${source}: ${document.errors[0]!.message}`);
      return document.toJS() as unknown;
    })
    .filter((value) => value !== null);
}

export function renderKustomization(directory: string): Resource[] {
  const file = join(directory, 'kustomization.yaml');
  const kustomization = parse(readFileSync(file, 'utf8'), { version: '1.1' }) as Kustomization;
  for (const field of Object.keys(kustomization)) {
    if (!KNOWN_FIELDS.has(field)) throw new Error(`${file}: ${field} is not supported by this renderer; teach it`);
  }
  const resources: Resource[] = [];
  for (const entry of kustomization.resources ?? []) {
    const path = resolve(directory, entry);
    if (statSync(path).isDirectory()) resources.push(...renderKustomization(path));
    else resources.push(...(readYamlDocuments(path) as Resource[]));
  }
  if (kustomization.namespace !== undefined) {
    for (const resource of resources) if (!CLUSTER_SCOPED.has(resource.kind)) resource.metadata.namespace = kustomization.namespace;
  }
  for (const { target, patch } of kustomization.patches ?? []) {
    const matches = resources.filter((resource) => resource.kind === target.kind && resource.metadata.name === target.name);
    if (matches.length === 0) throw new Error(`${file}: no ${target.kind}/${target.name} to patch`);
    const operations = parse(patch, { version: '1.1' }) as Operation[];
    for (const resource of matches) for (const operation of operations) apply(resource, operation, file);
  }
  return resources;
}

function pointer(path: string): string[] {
  if (!path.startsWith('/')) throw new Error(`not a JSON pointer: ${path}`);
  return path.slice(1).split('/').map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function apply(document: Record<string, unknown>, operation: Operation, file: string): void {
  const parts = pointer(operation.path);
  const last = parts.pop()!;
  let parent: unknown = document;
  for (const part of parts) {
    parent = (parent as Record<string, unknown>)?.[part];
    if (parent === undefined) throw new Error(`${file}: ${operation.op} ${operation.path}: ${part} does not exist`);
  }
  const container = parent as Record<string, unknown> & unknown[];
  const index = Array.isArray(container) ? (last === '-' ? container.length : Number(last)) : undefined;
  switch (operation.op) {
    case 'add':
      if (index !== undefined) container.splice(index, 0, structuredClone(operation.value));
      else container[last] = structuredClone(operation.value);
      return;
    case 'replace':
    case 'remove':
      if (index !== undefined ? index >= container.length : !(last in container)) {
        throw new Error(`${file}: ${operation.op} ${operation.path}: nothing there`);
      }
      if (operation.op === 'replace') container[index ?? (last as never)] = structuredClone(operation.value) as never;
      else if (index !== undefined) container.splice(index, 1);
      else delete container[last];
      return;
    case 'test': {
      const actual = index !== undefined ? container[index] : container[last];
      if (JSON.stringify(actual) !== JSON.stringify(operation.value)) {
        throw new Error(`${file}: test ${operation.path}: expected ${JSON.stringify(operation.value)}, found ${JSON.stringify(actual)}`);
      }
      return;
    }
    default:
      throw new Error(`${file}: op ${(operation as Operation).op} is not supported`);
  }
}

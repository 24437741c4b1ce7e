// deploy/kubernetes rendered (base and overlays) and checked against the code
// itself, so the manifests cannot drift from it: every env name is a setting
// and its value parses as Tally would parse it, ports are the settings'
// defaults, probes hit the routes that answer them, every Secret key a pod
// needs is one docs/operations.md tells the operator to create, and the pod's
// grace period covers TALLY_SHUTDOWN_TIMEOUT. Rendered by a small renderer
// (./kustomize.ts) and, where kubectl is installed, checked equal to
// `kubectl kustomize`.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDuration, SETTINGS } from '../../src/config.js';
import { createProbeRoutes } from '../../src/transport/http/probes.js';
import type { Readiness } from '../../src/transport/telemetry/readiness.js';
import { parseYamlText, readYamlDocuments, renderKustomization, type Resource } from './kustomize.js';

const ROOT = join(import.meta.dirname, '..', '..');
const KUBERNETES = join(ROOT, 'deploy', 'kubernetes');
const VARIANTS = { base: 'base', sentinel: 'overlays/sentinel', istio: 'overlays/istio' } as const;
const SETTING_BY_ENV = new Map(Object.values(SETTINGS).map((setting) => [setting.env, setting]));
const OPERATIONS_DOC = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');

type Container = {
  name: string;
  ports: { name: string; containerPort: number }[];
  env: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  readinessProbe: { httpGet: { path: string; port: string; scheme: string } };
  livenessProbe: { httpGet: { path: string; port: string; scheme: string } };
  startupProbe?: { httpGet: { path: string; port: string; scheme: string } };
  lifecycle?: { preStop?: { exec?: { command: string[] }; sleep?: { seconds: number } } };
  resources: { requests?: { cpu?: string; memory?: string }; limits?: { memory?: string } };
  securityContext: Record<string, unknown> & { capabilities?: { drop?: string[] } };
  volumeMounts: { name: string; mountPath: string }[];
};
type PodSpec = {
  terminationGracePeriodSeconds: number;
  securityContext: Record<string, unknown>;
  containers: Container[];
  volumes: { name: string; secret?: { secretName: string } }[];
};

function one(resources: Resource[], kind: string, name = 'tally'): Resource & Record<string, any> {
  const found = resources.filter((resource) => resource.kind === kind && resource.metadata.name === name);
  expect(found, `${kind}/${name}`).toHaveLength(1);
  return found[0] as Resource & Record<string, any>;
}

function podOf(resources: Resource[]): { pod: PodSpec; container: Container; labels: Record<string, string> } {
  const deployment = one(resources, 'Deployment');
  const pod = deployment.spec.template.spec as PodSpec;
  return { pod, container: pod.containers.find((container) => container.name === 'tally')!, labels: deployment.spec.template.metadata.labels };
}

function envValue(container: Container, name: string): string | undefined {
  return container.env.find((entry) => entry.name === name)?.value;
}

/** The (Secret, key) pairs created by the `kubectl create secret` commands in docs/operations.md. */
function documentedSecretKeys(): Set<string> {
  const keys = new Set<string>();
  for (const line of OPERATIONS_DOC.split('\n')) {
    const command = /kubectl\b.*\bcreate secret (generic|tls) ([a-z0-9-]+)(.*)$/.exec(line);
    if (command === null) continue;
    const [, type, name, rest] = command;
    if (type === 'tls') ['tls.crt', 'tls.key'].forEach((key) => keys.add(`${name}/${key}`));
    for (const option of rest!.matchAll(/--from-(?:file|literal)=([A-Za-z0-9._-]+)=/g)) keys.add(`${name}/${option[1]}`);
  }
  return keys;
}

const rendered = Object.fromEntries(Object.entries(VARIANTS).map(([variant, path]) => [variant, renderKustomization(join(KUBERNETES, path))])) as Record<
  keyof typeof VARIANTS,
  Resource[]
>;

describe.each(Object.keys(VARIANTS) as (keyof typeof VARIANTS)[])('deploy/kubernetes %s', (variant) => {
  const resources = rendered[variant];
  const { pod, container, labels } = podOf(resources);

  it('names only settings Tally has, each with a value Tally accepts', () => {
    for (const entry of container.env) {
      const setting = SETTING_BY_ENV.get(entry.name);
      expect(setting, `${entry.name} is not a Tally setting`).toBeDefined();
      if (entry.value === undefined) continue;
      // File settings are checked against the Secret volumes below; the rest parse as at start-up.
      if (!entry.name.endsWith('_FILE')) expect(() => setting!.parse(entry.value!), entry.name).not.toThrow();
    }
  });

  it('listens on the ports the settings say, named as the Service and NetworkPolicy use them', () => {
    const portOf = (name: string) => container.ports.find((port) => port.name === name)?.containerPort;
    expect(portOf('grpc')).toBe(Number(envValue(container, SETTINGS.grpcPort.env) ?? SETTINGS.grpcPort.default));
    expect(portOf('http')).toBe(Number(envValue(container, SETTINGS.httpPort.env) ?? SETTINGS.httpPort.default));
    expect(portOf('grpc')).toBe(Number(SETTINGS.grpcPort.default));
    expect(portOf('http')).toBe(Number(SETTINGS.httpPort.default));

    const service = one(resources, 'Service');
    const servicePorts = service.spec.ports as { name: string; port: number; targetPort: string; appProtocol?: string }[];
    expect(servicePorts.map((port) => port.targetPort).sort()).toEqual(['grpc', 'http']);
    expect(servicePorts.find((port) => port.targetPort === 'grpc')!.appProtocol).toBe('grpc');
    expect(Object.entries(service.spec.selector).every(([key, value]) => labels[key] === value)).toBe(true);

    const policy = one(resources, 'NetworkPolicy');
    const ingressPorts = (policy.spec.ingress as { ports: { port: string }[] }[]).flatMap((rule) => rule.ports.map((port) => port.port));
    for (const port of ingressPorts) expect(['grpc', 'http']).toContain(port);
    expect(Object.entries(policy.spec.podSelector.matchLabels).every(([key, value]) => labels[key] === value)).toBe(true);
    const egressPorts = (policy.spec.egress as { ports: { port: number }[] }[]).flatMap((rule) => rule.ports.map((port) => port.port));
    expect(egressPorts).toContain(6379);
    if (variant === 'sentinel') expect(egressPorts).toContain(26379);
  });

  it('probes readiness on the route that says "not ready" and liveness on the one that is always up', () => {
    let serving = false;
    const routes = createProbeRoutes({ serving: () => serving, draining: () => false } as unknown as Readiness);
    const statusOf = (path: string) => {
      const route = routes.find((candidate) => candidate.method === 'GET' && candidate.path === path);
      expect(route, path).toBeDefined();
      let status = 0;
      const response = { writeHead: (code: number) => ((status = code), response), end: () => response };
      route!.handle({} as never, response as never);
      return status;
    };
    const readiness = container.readinessProbe.httpGet;
    const liveness = container.livenessProbe.httpGet;
    expect(readiness.path).toBe('/readyz');
    expect(liveness.path).toBe('/healthz');
    expect(statusOf(readiness.path)).toBe(503);
    expect(statusOf(liveness.path)).toBe(200);
    serving = true;
    expect(statusOf(readiness.path)).toBe(200);
    const tls = envValue(container, SETTINGS.tlsCertFile.env) !== undefined;
    for (const probe of [readiness, liveness, container.startupProbe?.httpGet]) {
      if (probe === undefined) continue;
      expect(probe.port).toBe('http');
      expect(probe.scheme).toBe(tls ? 'HTTPS' : 'HTTP');
    }
  });

  it('lets in-flight calls finish: the grace period covers the preStop pause, TALLY_SHUTDOWN_TIMEOUT and Tally\'s last second', () => {
    const shutdownMs = parseDuration(envValue(container, SETTINGS.shutdownTimeoutMs.env) ?? String(SETTINGS.shutdownTimeoutMs.default));
    const preStop = container.lifecycle?.preStop;
    const pauseSeconds = preStop?.sleep?.seconds ?? (preStop?.exec?.command[0] === 'sleep' ? Number(preStop.exec.command[1]) : 0);
    expect(pauseSeconds).toBeGreaterThan(0);
    // main.ts exits at the latest one second past the timeout.
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(pauseSeconds + shutdownMs / 1000 + 1);
  });

  it('takes the master key, the callers file and every other secret from Secrets the operations guide creates', () => {
    const documented = documentedSecretKeys();
    expect(documented.size).toBeGreaterThan(0);
    const needed: string[] = [];
    for (const entry of container.env) {
      const reference = entry.valueFrom?.secretKeyRef;
      if (reference !== undefined) needed.push(`${reference.name}/${reference.key}`);
      if (!entry.name.endsWith('_FILE') || entry.value === undefined) continue;
      const mount = container.volumeMounts.find((candidate) => entry.value!.startsWith(`${candidate.mountPath}/`));
      expect(mount, `${entry.name}=${entry.value} is on no volume`).toBeDefined();
      const volume = pod.volumes.find((candidate) => candidate.name === mount!.name);
      expect(volume?.secret, `${entry.name} must come from a Secret`).toBeDefined();
      needed.push(`${volume!.secret!.secretName}/${entry.value.slice(mount!.mountPath.length + 1)}`);
    }
    expect(needed).toEqual(expect.arrayContaining(['tally-master-key/master-key', 'tally-callers/callers.json']));
    for (const key of needed) expect(documented, `docs/operations.md creates no Secret key ${key}`).toContain(key);
    expect(container.env.map((entry) => entry.name)).not.toContain(SETTINGS.masterKey.env);
  });

  it('runs as non-root on a read-only root filesystem, with requests sized and a disruption budget', () => {
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).not.toBe(0);
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(container.securityContext.capabilities?.drop).toContain('ALL');
    expect(container.resources.requests?.cpu).toBeDefined();
    expect(container.resources.requests?.memory).toBeDefined();
    expect(container.resources.limits?.memory).toBeDefined();
    const budget = one(resources, 'PodDisruptionBudget');
    expect(Object.entries(budget.spec.selector.matchLabels).every(([key, value]) => labels[key] === value)).toBe(true);
    expect(one(resources, 'Deployment').spec.replicas).toBeGreaterThan(budget.spec.maxUnavailable);
  });
});

describe('deploy/kubernetes/overlays/istio', () => {
  const resources = rendered.istio;
  const mesh = readYamlDocuments(join(KUBERNETES, 'overlays', 'istio', 'mesh-config.yaml'))[0] as any;

  it('registers Tally as an envoyExtAuthzGrpc provider that the CUSTOM AuthorizationPolicy names, at the Service\'s gRPC port', () => {
    const service = one(resources, 'Service');
    const grpcPort = (service.spec.ports as { name: string; port: number }[]).find((port) => port.name === 'grpc')!.port;
    const policy = one(resources, 'AuthorizationPolicy', 'tally-ext-authz');
    expect(policy.spec.action).toBe('CUSTOM');
    const provider = (mesh.spec.meshConfig.extensionProviders as any[]).find((candidate) => candidate.name === policy.spec.provider.name);
    expect(provider?.envoyExtAuthzGrpc).toMatchObject({
      service: `${service.metadata.name}.${service.metadata.namespace}.svc.cluster.local`,
      port: grpcPort,
      failOpen: false,
    });
    const filter = one(resources, 'EnvoyFilter', 'tally-ext-authz-credential');
    expect(filter.spec.workloadSelector.labels).toEqual(policy.spec.selector.matchLabels);
  });

  it('leaves TLS to the mesh: no TLS files, probes over HTTP, mutual TLS required by the mesh', () => {
    const { container } = podOf(resources);
    expect(container.env.map((entry) => entry.name).filter((name) => name.startsWith('TALLY_TLS_'))).toEqual([]);
    expect(one(resources, 'PeerAuthentication').spec.mtls.mode).toBe('STRICT');
    expect(one(resources, 'Service').spec.ports.find((port: { name: string }) => port.name === 'http').appProtocol).toBe('http');
  });
});

const kubectl = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((path) => existsSync(path));

describe('the renderer', () => {
  function kustomization(files: Record<string, string>): string {
    const directory = mkdtempSync(join(tmpdir(), 'tally-kustomize-'));
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(join(directory, name, '..'), { recursive: true });
      writeFileSync(join(directory, name), text);
    }
    return directory;
  }
  const map = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  list: [a, b]\n  mode: 0400\n';

  it('applies add, replace, remove and test, and sets the namespace', () => {
    const patch = '- op: test\n  path: /data/list/1\n  value: b\n- op: add\n  path: /data/list/-\n  value: c\n- op: remove\n  path: /data/list/0\n- op: replace\n  path: /metadata/labels\n  value: {x: z}\n- op: add\n  path: /metadata/annotations\n  value: {a~1b: c}';
    const directory = kustomization({
      'base/map.yaml': map,
      'base/kustomization.yaml': 'resources: [map.yaml]\nnamespace: apps',
      'overlay/kustomization.yaml': `resources: [../base]\npatches:\n  - target: {kind: ConfigMap, name: settings}\n    patch: |-\n${patch.replace(/^/gm, '      ')}\n`,
    });
    expect(() => renderKustomization(join(directory, 'overlay'))).toThrow(/replace \/metadata\/labels: nothing there/);
    writeFileSync(join(directory, 'base', 'map.yaml'), map.replace('  name: settings\n', '  name: settings\n  labels: {}\n'));
    const [resource] = renderKustomization(join(directory, 'overlay')) as any[];
    expect(resource.metadata).toEqual({ name: 'settings', namespace: 'apps', labels: { x: 'z' }, annotations: { 'a~1b': 'c' } });
    // YAML 1.1, as Kubernetes reads it: 0400 is octal.
    expect(resource.data).toEqual({ list: ['b', 'c'], mode: 0o400 });
  });

  it('refuses what it does not implement, and a failed test', () => {
    expect(() => renderKustomization(kustomization({ 'kustomization.yaml': 'resources: []\ncommonLabels: {a: b}' }))).toThrow(/commonLabels is not supported/);
    const failing = kustomization({
      'map.yaml': map,
      'kustomization.yaml': 'resources: [map.yaml]\npatches:\n  - target: {kind: ConfigMap, name: settings}\n    patch: |-\n      - op: test\n        path: /data/list/0\n        value: z\n',
    });
    expect(() => renderKustomization(failing)).toThrow(/test \/data\/list\/0: expected "z", found "a"/);
  });

  it.each(Object.entries(VARIANTS))('renders %s as kustomize does, where kubectl is installed', (variant, path) => {
    // Without kubectl the checks above still run on this renderer's output; this
    // comparison is what keeps the renderer honest where kubectl exists.
    if (kubectl === undefined) return;
    const output = execFileSync(kubectl, ['kustomize', join(KUBERNETES, path)], { encoding: 'utf8' });
    const key = (resource: Resource) => `${resource.kind}/${resource.metadata.namespace ?? ''}/${resource.metadata.name}`;
    const sort = (resources: Resource[]) => [...resources].sort((left, right) => key(left).localeCompare(key(right)));
    const fromKubectl = parseYamlText(output) as Resource[];
    expect(sort(rendered[variant as keyof typeof VARIANTS])).toEqual(sort(fromKubectl));
  });
});

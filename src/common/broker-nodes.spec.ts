import { describe, expect, it } from '@jest/globals';
import { BrokerNodes, nodeAddress, nodeListProblems, nodeOrderFor, splitNodeUrls } from './broker-nodes.js';

const CLUSTER = ['amqp://w:pw@c1:5672', 'amqp://w:pw@c2:5672', 'amqp://w:pw@c3:5672'];

describe('splitNodeUrls', () => {
  it('reads one URL as a single node, as behind a load balancer', () => {
    expect(splitNodeUrls('amqp://guest:guest@127.0.0.1:5672')).toEqual(['amqp://guest:guest@127.0.0.1:5672']);
  });

  it('reads a comma-separated list in order, ignoring spaces and empty entries', () => {
    expect(splitNodeUrls(' amqp://w:pw@c1:5672, amqp://w:pw@c2:5672,,amqp://w:pw@c3:5672 ')).toEqual(CLUSTER);
  });
});

describe('nodeListProblems', () => {
  it('accepts one URL and a list of nodes', () => {
    expect(nodeListProblems('amqps://u:p@broker.example:5671/sales')).toEqual([]);
    expect(nodeListProblems(CLUSTER.join(','))).toEqual([]);
  });

  const goodNode = 'amqp://w:s3cretpw@c1';
  it.each([
    ['an empty list', ' , ', 'names no broker node'],
    ['a single URL of another scheme', 'http://localhost', 'must start with amqp:// or amqps://'],
    ['a single value that is no URL', 'amqp//guest:s3cretpw@127.0.0.1', 'not a valid URL'],
    ['a bad second node', `${goodNode},http://w:s3cretpw@c2`, 'node 2 of 2: must start with amqp://'],
    ['a node without a scheme', `${goodNode},c2:5672`, 'node 2 of 2: '],
    ['a node listed twice', `${goodNode},${goodNode}`, 'node 2 of 2: repeats node 1'],
  ])('refuses %s, naming the node by position and never echoing a URL', (_case, value, expected) => {
    const problems = nodeListProblems(value).join('\n');
    expect(problems).toContain(expected);
    expect(problems).not.toContain('s3cretpw');
  });
});

describe('nodeAddress', () => {
  it('names a node by host and port, without credentials, with the scheme default port', () => {
    expect(nodeAddress('amqp://w:pw@c1:5673/sales')).toBe('c1:5673');
    expect(nodeAddress('amqp://w:pw@c1')).toBe('c1:5672');
    expect(nodeAddress('amqps://w:pw@c1')).toBe('c1:5671');
  });
});

describe('nodeOrderFor', () => {
  it('gives every worker the whole ring, starting at a node that depends on its name only', () => {
    for (const workerId of ['worker-1', 'flashsale-worker-7d9f-abcde', 'host-1234']) {
      const order = nodeOrderFor(CLUSTER, workerId);
      expect([...order].sort()).toEqual(CLUSTER);
      const start = CLUSTER.indexOf(order[0]!);
      expect(order).toEqual([...CLUSTER.slice(start), ...CLUSTER.slice(0, start)]);
      expect(nodeOrderFor(CLUSTER, workerId)).toEqual(order);
    }
  });

  it('spreads a fleet over the nodes', () => {
    const starts = new Map<string, number>();
    for (let index = 0; index < 300; index += 1) {
      const first = nodeOrderFor(CLUSTER, `flashsale-worker-${index}`)[0]!;
      starts.set(first, (starts.get(first) ?? 0) + 1);
    }
    expect([...starts.keys()].sort()).toEqual(CLUSTER);
    for (const count of starts.values()) expect(count).toBeGreaterThan(60);
  });

  it('keeps a single URL as it is', () => {
    expect(nodeOrderFor(['amqp://lb:5672'], 'any')).toEqual(['amqp://lb:5672']);
  });
});

describe('BrokerNodes', () => {
  const nodesOf = (random: () => number) => new BrokerNodes(CLUSTER.join(','), 'worker-1', random);

  it('knows the node in use, by host and port, until the connection is lost', () => {
    const nodes = nodesOf(() => 0.5);
    expect(nodes.connected).toBeUndefined();
    nodes.connectedTo(nodes.urls[1]);
    expect(nodes.connected).toBe(new URL(nodes.urls[1]!).host);
    nodes.disconnected();
    expect(nodes.connected).toBeUndefined();
  });

  it('names nodes with their position and redacted credentials', () => {
    const nodes = nodesOf(() => 0.5);
    expect(nodes.name(nodes.urls[2])).toMatch(/^amqp:\/\/w:\*\*\*@c\d:5672 \(node 3 of 3\)$/);
    expect(nodes.describe()).not.toContain(':pw@');
    expect(new BrokerNodes('amqp://w:pw@lb:5672', 'worker-1').name('amqp://w:pw@lb:5672')).toBe(
      'amqp://w:***@lb:5672',
    );
  });

  it('tries the next node soon after losing one, with jitter', () => {
    expect(nodesOf(() => 0).disconnected()).toBe(250);
    expect(nodesOf(() => 1).disconnected()).toBe(500);
  });

  it('doubles the wait with each full round of failed nodes, up to a cap, and resets on connect', () => {
    const nodes = nodesOf(() => 1);
    const delays = Array.from({ length: 18 }, () => nodes.attemptFailed());
    expect(delays.slice(0, 2)).toEqual([500, 500]);
    expect(delays.slice(2, 5)).toEqual([1000, 1000, 1000]);
    expect(delays.slice(5, 8)).toEqual([2000, 2000, 2000]);
    expect(delays.at(-1)).toBe(2000);
    nodes.connectedTo(nodes.urls[0]);
    expect(nodes.disconnected()).toBe(500);
  });
});

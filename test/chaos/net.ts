/**
 * Packet loss and partitions for the chaos run, with iptables inside the
 * run's own network namespace (so nothing outside it is touched): loss is a
 * `statistic` rule on loopback output; a partition drops what one
 * registrar's processes (matched by their uid) send to its peers' ENRP ports
 * and what its own ENRP listener sends.
 */
import { execFileSync } from 'node:child_process';

const LOSS = 'RSPCHAOS_LOSS';
const PART = 'RSPCHAOS_PART';

export interface NetFaults {
  readonly enabled: boolean;
  setLoss(probability: number): void;
  /** Cuts ENRP between the registrar running as `uid` (listening on `ownPort`) and the peers' `peerPorts`. */
  partition(uid: number, ownPort: number, peerPorts: number[]): void;
  /** Ends the partition of `uid` alone (another may still be on), or every partition. */
  heal(uid?: number): void;
  close(): void;
}

function ipt(args: string[]): void {
  execFileSync('iptables', ['-w', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function netFaults(enabled: boolean): NetFaults {
  const rules = new Map<number, string[][]>();
  if (enabled) {
    for (const chain of [LOSS, PART]) {
      ipt(['-N', chain]);
      ipt(['-A', 'OUTPUT', '-j', chain]);
    }
  }
  return {
    enabled,
    setLoss(probability) {
      if (!enabled) return;
      ipt(['-F', LOSS]);
      if (probability > 0) ipt(['-A', LOSS, '-o', 'lo', '-m', 'statistic', '--mode', 'random', '--probability', String(probability), '-j', 'DROP']);
    },
    partition(uid, ownPort, peerPorts) {
      if (!enabled) return;
      const me = ['-m', 'owner', '--uid-owner', String(uid), '-p', 'tcp'];
      const added = [...peerPorts.map((port) => [...me, '--dport', String(port), '-j', 'DROP']), [...me, '--sport', String(ownPort), '-j', 'DROP']];
      for (const rule of added) ipt(['-A', PART, ...rule]);
      rules.set(uid, [...(rules.get(uid) ?? []), ...added]);
    },
    heal(uid) {
      if (!enabled) return;
      if (uid === undefined) {
        ipt(['-F', PART]);
        rules.clear();
        return;
      }
      for (const rule of rules.get(uid) ?? []) ipt(['-D', PART, ...rule]);
      rules.delete(uid);
    },
    close() {
      if (!enabled) return;
      for (const chain of [LOSS, PART]) {
        try {
          ipt(['-D', 'OUTPUT', '-j', chain]);
          ipt(['-F', chain]);
          ipt(['-X', chain]);
        } catch {
          // the namespace goes away with the run anyway
        }
      }
    },
  };
}

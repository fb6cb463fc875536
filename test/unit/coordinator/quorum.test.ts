import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { effectiveQuorum, parseQuorumParam, QuorumRound } from '../../../src/coordinator/quorum.js';
import { RingkvError } from '../../../src/errors.js';

describe('QuorumRound', () => {
  it('is ok once required acks arrive and failed once they no longer can', () => {
    const r = new QuorumRound(2, 3);
    expect(r.state).toBe('pending');
    expect(r.ack()).toBe('pending');
    expect(r.fail()).toBe('pending');
    expect(r.ack()).toBe('ok');
    const f = new QuorumRound(3, 3);
    expect(f.fail()).toBe('failed');
    expect(f.answered).toBe(0);
  });

  it('fails immediately when fewer targets exist than required', () => {
    expect(new QuorumRound(3, 2).state).toBe('failed');
  });

  it('never counts more answers than targets', () => {
    const r = new QuorumRound(1, 1);
    r.fail();
    r.ack();
    expect(r.answered).toBe(0);
    expect(r.state).toBe('failed');
  });

  it('agrees with a direct count for any sequence of answers', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 0, max: 7 }), fc.array(fc.boolean(), { maxLength: 10 }), (req, targets, answers) => {
        const r = new QuorumRound(req, targets);
        let acks = 0;
        let fails = 0;
        for (const a of answers) {
          if (acks + fails >= targets) break;
          if (a) {
            r.ack();
            acks++;
          } else {
            r.fail();
            fails++;
          }
        }
        const expected = acks >= req ? 'ok' : acks + (targets - acks - fails) < req ? 'failed' : 'pending';
        expect(r.state).toBe(expected);
        expect(r.answered).toBe(acks);
      }),
      { numRuns: 1000 },
    );
  });

  it('rejects nonsense sizes', () => {
    expect(() => new QuorumRound(0, 3)).toThrow(RangeError);
    expect(() => new QuorumRound(1, -1)).toThrow(RangeError);
  });
});

describe('parseQuorumParam', () => {
  it('accepts names and integers 1..n', () => {
    expect(parseQuorumParam('r', 'one', 3)).toBe(1);
    expect(parseQuorumParam('r', 'quorum', 3)).toBe(2);
    expect(parseQuorumParam('r', 'quorum', 5)).toBe(3);
    expect(parseQuorumParam('w', 'all', 3)).toBe(3);
    expect(parseQuorumParam('w', '3', 3)).toBe(3);
  });

  it.each(['0', '4', '-1', '1.5', 'two', '', ' 1', 'ALL'])('rejects %j with BAD_QUERY', (v) => {
    try {
      parseQuorumParam('w', v, 3);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(RingkvError);
      expect((err as RingkvError).code).toBe('BAD_QUERY');
      expect((err as RingkvError).status).toBe(400);
    }
  });

  it('caps quorums at the replicas that exist', () => {
    expect(effectiveQuorum(2, 1)).toBe(1);
    expect(effectiveQuorum(3, 3)).toBe(3);
    expect(effectiveQuorum(2, 5)).toBe(2);
  });
});

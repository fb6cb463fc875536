import { type PeerAddress, type Transport, TransportError } from '../../../src/transport/transport.js';

/** The bytes a controllable transport answers with on success. */
export const OK = Uint8Array.from([7]);

export type Outcome = 'ok' | 'unreachable' | 'timeout' | 'remote' | 'aborted' | 'hang';

/** A transport whose answer per peer is set by the test; counts calls reaching it. */
export function controllable() {
  const outcome = new Map<PeerAddress, Outcome>();
  const calls: PeerAddress[] = [];
  const hung: Array<(o: Outcome) => void> = [];
  const answer = (to: PeerAddress, o: Outcome): Uint8Array => {
    if (o === 'ok') return OK;
    if (o === 'remote') throw new TransportError('remote', to, 'nope', { status: 503 });
    throw new TransportError(o === 'hang' ? 'timeout' : o, to, o);
  };
  const inner: Transport = {
    async send(to) {
      calls.push(to);
      const o = outcome.get(to) ?? 'ok';
      if (o === 'hang') return new Promise<Uint8Array>((resolve, reject) => hung.push((late) => {
        try {
          resolve(answer(to, late));
        } catch (e) {
          reject(e);
        }
      }));
      await Promise.resolve();
      return answer(to, o);
    },
    close: async () => undefined,
  };
  return { inner, outcome, calls, hung };
}

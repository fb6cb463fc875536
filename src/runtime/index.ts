export type { Clock } from './clock.js';
export { systemClock } from './clock.js';
export type { Random } from './random.js';
export { seededRandom, systemRandom } from './random.js';
export type { TimerHandle, Timers } from './timers.js';
export { systemTimers } from './timers.js';
export { drainMicrotasks, ManualTime } from './manual.js';

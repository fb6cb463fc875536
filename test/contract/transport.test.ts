import { transportContract } from './transport.contract.js';
import { httpHarness, memoryHarness } from './transport-harnesses.js';

transportContract('HttpTransport', httpHarness());
transportContract('MemoryNetwork', memoryHarness());

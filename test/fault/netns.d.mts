/** Types of the parts of netns.mjs that tests use. */
export const NS_PREFIX: string;
export function netnsUnavailableReason(): string | undefined;
export function cleanupLeftovers(): string[];
export function removeNamespacesSync(prefix: string): string[];
export function namespaceExists(name: string): boolean;
export function run(cmd: string, args: string[], opts?: { timeoutMs?: number; allowFail?: boolean }): Promise<string>;

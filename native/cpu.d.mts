export declare const NATIVE_SRC: string;
export declare function cpuFingerprint(): string;
export declare function sourceHash(): string;
export declare function cacheKey(version: string): string;

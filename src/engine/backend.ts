import { tf } from './tfjs.ts';

export type BackendName = 'wasm' | 'cpu';

/**
 * Select the numeric backend once per process. wasm (XNNPACK, SIMD) is the fast one;
 * cpu (plain JS) is the reference used by tests to check the wasm results.
 */
let ready = false;

/** Whether initBackend has run (TF.js backends start asynchronously). */
export function backendReady(): boolean {
  return ready;
}

export async function initBackend(name: BackendName = 'wasm'): Promise<void> {
  if (ready && tf.getBackend() === name) return;
  const before = processHandlers();
  try {
    const ok = await tf.setBackend(name);
    if (!ok) throw new Error(`the TF.js ${name} backend failed to start`);
    await tf.ready();
  } finally {
    removeHandlersAddedSince(before);
  }
  ready = true;
}

const EVENTS = ['uncaughtException', 'unhandledRejection'] as const;

type Handler = (...a: unknown[]) => void;
const listeners = (e: (typeof EVENTS)[number]): Handler[] => process.listeners(e as 'uncaughtException') as Handler[];

function processHandlers(): Map<string, Set<Handler>> {
  return new Map(EVENTS.map((e) => [e, new Set(listeners(e))]));
}

/**
 * The wasm backend's Emscripten glue installs process-wide uncaughtException/unhandledRejection
 * handlers that rethrow every error from inside its own code and exit with code 7: a user's
 * `throw new Error('x')` would come out as a crash of the backend. They only serve the glue's
 * own standalone use, so they go; Node's default handling (the user's stack, exit 1) stays.
 */
function removeHandlersAddedSince(before: Map<string, Set<Handler>>): void {
  for (const e of EVENTS) for (const h of listeners(e)) if (!before.get(e)!.has(h)) process.off(e, h);
}

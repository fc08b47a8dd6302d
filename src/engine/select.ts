import { NativeUnavailableError, UsageError } from '../errors.ts';
import type { BaseNetwork } from '../model/network.ts';
import type { EngineChoice, EngineOptions, EngineSetup, TrainEngine } from './engine.ts';
import { nativeStatus, noteTfjsFallback } from './native.ts';
import { NATIVE_BASES, NativeEngine } from './nativeEngine.ts';
import { TfjsEngine } from './tfjsEngine.ts';

export const ENGINE_CHOICES: readonly EngineChoice[] = ['auto', 'tfjs', 'native'];

export interface CreateEngineOptions extends EngineSetup, EngineOptions {
  engine: EngineChoice;
}

/**
 * Which engine a choice resolves to here: auto = native when it loaded and runs this network (an
 * MLP); an MLP that falls back to TF.js because of the addon gets one line on stderr saying so.
 */
export function resolveEngine(choice: EngineChoice, network: BaseNetwork): 'tfjs' | 'native' {
  if (choice === 'tfjs') return 'tfjs';
  const st = nativeStatus();
  if (choice === 'native') {
    if (!st.available) throw new NativeUnavailableError(`--engine native: the native engine is not available (${st.detail})`);
    if (!NATIVE_BASES.includes(network.kind)) throw new UsageError(`--engine native runs ${NATIVE_BASES.join(' and ')} base networks, not ${network.kind}`);
    return 'native';
  }
  if (choice !== 'auto') throw new UsageError(`unknown engine "${String(choice)}"; valid: ${ENGINE_CHOICES.join(', ')}`);
  if (!NATIVE_BASES.includes(network.kind)) return 'tfjs';
  if (st.available) return 'native';
  // never silently 25x slower: say why and how to fix it (once)
  noteTfjsFallback();
  return 'tfjs';
}

export function createEngine(o: CreateEngineOptions): TrainEngine {
  const common = { network: o.network, loss: o.loss, weights: o.weights, optimizer: o.optimizer, learningRate: o.learningRate, keepGradients: o.keepGradients };
  return resolveEngine(o.engine, o.network) === 'native'
    ? new NativeEngine({ ...common, threads: o.threads })
    : new TfjsEngine(common);
}

import { UsageError } from '../errors.ts';
import { cnnNetwork } from './cnn.ts';
import { mlpNetwork } from './mlp.ts';
import type { BaseNetwork } from './network.ts';

export interface NetworkConfig {
  base: 'mlp' | 'cnn';
  embeddingDim: number;
  dropout: number;
}

/** The base networks by CLI name (`--base`). */
export const BASE_NAMES = ['mlp', 'cnn'] as const;

/** The base network for an input of height x width x channels. */
export function buildNetwork(cfg: NetworkConfig, height: number, width: number, channels = 1): BaseNetwork {
  switch (cfg.base) {
    case 'mlp':
      return mlpNetwork({ inputSize: height * width * channels, embeddingDim: cfg.embeddingDim, dropout: cfg.dropout });
    case 'cnn':
      return cnnNetwork({ height, width, channels, embeddingDim: cfg.embeddingDim, dropout: cfg.dropout });
    default:
      throw new UsageError(`unknown base network "${String(cfg.base)}"; valid: ${BASE_NAMES.join(', ')}`);
  }
}

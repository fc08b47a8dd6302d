/**
 * The TF.js tensors that the public types mention (a loss' `perPair`, an optimizer's `apply`),
 * declared here instead of imported from tfjs-core: importing them would make every consumer's
 * tsc load tfjs-core's declarations, which do not type-check with skipLibCheck off (TypeScript's
 * default): `Long` undeclared, @webgpu/types clashing with lib.dom. Every tfjs-core tensor of
 * the rank is one of these; the engine casts back to tfjs-core's types where it calls TF.js.
 */
export interface Tensor {
  readonly id: number;
  readonly shape: readonly number[];
  readonly size: number;
  readonly dtype: string;
  readonly rank: number;
  dispose(): void;
}

export interface Tensor1D extends Tensor {
  readonly shape: readonly [number];
}

export interface Tensor2D extends Tensor {
  readonly shape: readonly [number, number];
}

/** A tensor an optimizer updates in place. */
export interface Variable extends Tensor {
  readonly name: string;
  trainable: boolean;
}

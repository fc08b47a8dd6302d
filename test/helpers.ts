import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** ../shared beside the checkout: the original project's files (Keras weights). */
export const SHARED = resolve(REPO_ROOT, '../shared');
export const KERAS_FIXTURES = join(SHARED, 'fixtures', 'keras-h5');
export const hasShared = existsSync(KERAS_FIXTURES);
export const SHARED_ABSENT_MESSAGE = `../shared is absent (${SHARED}): the Keras fixture tests need the original project's files`;

// Files shipped with the package, found relative to this module (src/ in development, dist/ when built).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const MIGRATIONS_DIR = join(PACKAGE_ROOT, 'prisma', 'migrations');
export const TEMPLATES_DIR = join(PACKAGE_ROOT, 'templates');

// The metrics variables (README: Metrics): off by default, a token of at least 32 characters, a port other than PORT.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';

function problem(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

it('leaves metrics off unless METRICS_TOKEN or METRICS_PORT is set', () => {
  const c = loadConfig({});
  assert.deepEqual([c.metricsToken, c.metricsPort, c.metricsHost], [undefined, undefined, undefined]);
  const on = loadConfig({ METRICS_TOKEN: 't'.repeat(32), METRICS_PORT: '9464', METRICS_HOST: '10.0.0.5' });
  assert.deepEqual([on.metricsToken, on.metricsPort, on.metricsHost], ['t'.repeat(32), 9464, '10.0.0.5']);
});

it('refuses a short METRICS_TOKEN, a METRICS_PORT equal to PORT, and one that is not a port', () => {
  assert.equal(problem({ METRICS_TOKEN: 'short' }), 'METRICS_TOKEN: must be at least 32 characters');
  assert.equal(problem({ PORT: '3000', METRICS_PORT: '3000' }), 'METRICS_PORT: must differ from PORT (3000)');
  assert.match(problem({ METRICS_PORT: '70000' }), /^METRICS_PORT: must be between 0 and 65535/);
  assert.match(problem({ METRICS_PORT: 'nine' }), /^METRICS_PORT: must be a whole number/);
});

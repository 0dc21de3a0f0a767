const test = require('node:test');
const assert = require('node:assert');
test('timeout', () => assert.strictEqual(require('./index').timeout(), 120000));

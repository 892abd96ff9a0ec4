#!/usr/bin/env node
// The tutorial's workflow from Node.js, with better-sqlite3.
//
//   (cd examples/node && npm install)     # once; see README.md, "From Node.js"
//   node examples/node/tutorial.js [--epochs N] [--db FILE] [--lib PATH] [--data DIR]
//
// Run from the repository's root after `make` and `make data`. Loads
// libaesql, makes idx tables of MNIST's four files, trains the tutorial's
// autoencoder (784 -> 32 ReLU -> 784, seed 42) and prints its history, the
// average reconstruction error per digit class of the test set (the
// tutorial's table) and the three test digits the model finds most unusual.
//
//   --epochs N   passes over the training rows (default 50, the tutorial's)
//   --db FILE    the database the model is stored in (default :memory:)
//   --lib PATH   the extension (default ./libaesql.so)
//   --data DIR   where the MNIST files are (default data/mnist)
//
// better-sqlite3 must be version 12: version 13 needs Node.js 22.
'use strict';
const { parseArgs } = require('node:util');
const path = require('node:path');
const Database = require('better-sqlite3');

const { values: opt } = parseArgs({
  options: {
    epochs: { type: 'string', default: '50' },
    db: { type: 'string', default: ':memory:' },
    lib: { type: 'string', default: './libaesql.so' },
    data: { type: 'string', default: 'data/mnist' },
  },
});
const epochs = Number(opt.epochs);
if (!Number.isInteger(epochs) || epochs < 1) {
  console.error(`tutorial.js: --epochs must be a positive integer, got '${opt.epochs}'`);
  process.exit(2);
}

const db = new Database(opt.db);
db.loadExtension(opt.lib);

// idx arguments are SQL text: quote the paths as SQL strings.
const q = (s) => "'" + String(s).replace(/'/g, "''") + "'";
const file = (name) => q(path.join(opt.data, name));
db.exec(`
  CREATE VIRTUAL TABLE temp.mnist_train USING idx(
    images=${file('train-images-idx3-ubyte')}, labels=${file('train-labels-idx1-ubyte')});
  CREATE VIRTUAL TABLE temp.mnist_test USING idx(
    images=${file('t10k-images-idx3-ubyte')}, labels=${file('t10k-labels-idx1-ubyte')});
`);

const options = JSON.stringify({ epochs, seed: 42, name: 'node_model', replace: true });
const model = db.prepare("SELECT ae_train('mnist_train', 32, ?)").pluck().get(options);
console.log('model', model);

for (const h of db.prepare(
  'SELECT epoch, loss, val_loss FROM ae_history WHERE model = ? ORDER BY epoch').iterate(model)) {
  console.log(`epoch ${String(h.epoch).padStart(2)}  loss ${h.loss.toFixed(5)}  val_loss ${h.val_loss.toFixed(5)}`);
}

console.log('class avg_error');
for (const r of db.prepare(
  'SELECT class, avg(ae_error(?, pixels)) AS err FROM mnist_test GROUP BY class').iterate(model)) {
  console.log(`${String(r.class).padStart(5)} ${r.err.toFixed(4).padStart(9)}`);
}

console.log('most unusual test digits');
for (const r of db.prepare(
  `SELECT s.key, t.class, s.error FROM ae_scores(?, 'mnist_test') AS s
     JOIN mnist_test AS t ON t.rowid = s.key ORDER BY s.error DESC LIMIT 3`).iterate(model)) {
  console.log(`row ${String(r.key).padStart(5)}  class ${r.class}  error ${r.error.toFixed(6)}`);
}
db.close();

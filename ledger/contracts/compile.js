#!/usr/bin/env node
// Compiles IssuanceLog.sol with the pinned solc (package-lock.json) through its
// standard-JSON API — the solcjs CLI cannot set the EVM version — and writes
// IssuanceLog.json: {contractName, compiler, evmVersion, optimizer, abi, bytecode,
// deployedBytecode}. The metadata hash is left out of the bytecode so that the output
// depends only on the source and these settings.
//
//   node compile.js                 write IssuanceLog.json next to this script
//   node compile.js --check         compile and compare with the committed IssuanceLog.json;
//                                   exit 1 if they differ (nothing is written)
//   node compile.js --abigen DIR    also write DIR/IssuanceLog.abi and DIR/IssuanceLog.bin
//                                   (abigen's --abi and --bin inputs)
'use strict';

const fs = require('fs');
const path = require('path');

const COMPILER = '0.8.37';
const EVM_VERSION = 'cancun';
const OPTIMIZER = { enabled: true, runs: 200 };
const SOURCE = 'IssuanceLog.sol';
const CONTRACT = 'IssuanceLog';
const OUTPUT = path.join(__dirname, CONTRACT + '.json');

function die(msg) {
  process.stderr.write('compile.js: ' + msg + '\n');
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { check: false, abigen: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--check') {
      opts.check = true;
    } else if (argv[i] === '--abigen' && i + 1 < argv.length) {
      opts.abigen = argv[++i];
    } else {
      die('usage: node compile.js [--check] [--abigen DIR]');
    }
  }
  return opts;
}

function compile() {
  let solc;
  try {
    solc = require('solc');
  } catch (e) {
    die('the solc package is not installed: run `npm ci` in ' + __dirname + ' (' + e.message + ')');
  }
  const version = solc.version();
  if (!version.startsWith(COMPILER + '+')) {
    die('solc ' + version + ' is installed, want ' + COMPILER + ': run `npm ci` in ' + __dirname);
  }
  const input = {
    language: 'Solidity',
    sources: { [SOURCE]: { content: fs.readFileSync(path.join(__dirname, SOURCE), 'utf8') } },
    settings: {
      optimizer: OPTIMIZER,
      evmVersion: EVM_VERSION,
      metadata: { bytecodeHash: 'none' },
      outputSelection: {
        [SOURCE]: { [CONTRACT]: ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] },
      },
    },
  };
  const out = JSON.parse(solc.compile(JSON.stringify(input)));
  // Any diagnostic, warnings included, fails the build: the contract is meant to compile cleanly.
  if (out.errors && out.errors.length > 0) {
    die('solc reported:\n' + out.errors.map((e) => e.formattedMessage || e.message).join('\n'));
  }
  const c = out.contracts && out.contracts[SOURCE] && out.contracts[SOURCE][CONTRACT];
  if (!c || !c.evm.bytecode.object) {
    die('no bytecode for ' + CONTRACT + ' in the solc output');
  }
  const artifact = {
    contractName: CONTRACT,
    compiler: COMPILER,
    evmVersion: EVM_VERSION,
    optimizer: OPTIMIZER,
    abi: c.abi,
    bytecode: '0x' + c.evm.bytecode.object,
    deployedBytecode: '0x' + c.evm.deployedBytecode.object,
  };
  return { artifact, text: JSON.stringify(artifact, null, 2) + '\n' };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const { artifact, text } = compile();
  if (opts.check) {
    let committed;
    try {
      committed = fs.readFileSync(OUTPUT, 'utf8');
    } catch (e) {
      die('reading the committed artifact: ' + e.message);
    }
    if (committed !== text) {
      die(path.basename(OUTPUT) + ' does not match ' + SOURCE + ' compiled with solc ' + COMPILER +
        ' (' + EVM_VERSION + '): run `make contracts` and commit the result');
    }
    process.stdout.write(path.basename(OUTPUT) + ' matches ' + SOURCE + ' (solc ' + COMPILER + ', ' + EVM_VERSION + ')\n');
    return;
  }
  fs.writeFileSync(OUTPUT, text);
  if (opts.abigen) {
    fs.mkdirSync(opts.abigen, { recursive: true });
    fs.writeFileSync(path.join(opts.abigen, CONTRACT + '.abi'), JSON.stringify(artifact.abi));
    fs.writeFileSync(path.join(opts.abigen, CONTRACT + '.bin'), artifact.bytecode);
  }
}

main();

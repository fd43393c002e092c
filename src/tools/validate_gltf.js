// Validates glTF / GLB files with the Khronos glTF validator (npm package
// `gltf-validator`, installed by src/tools/install_gltf_validator.sh).
//
//   node src/tools/validate_gltf.js FILE [FILE ...]
//
// Prints one JSON object per file on stdout: {file, validatorVersion,
// numErrors, numWarnings, numInfos, numHints, messages: [{code, severity,
// message, pointer}]} (severity 0 error, 1 warning, 2 info, 3 hint). Exits 0
// when no file has errors, 1 when one has, 2 when the validator or a file
// cannot be read. The package is looked up under GLTF_VALIDATOR_DIR if set,
// else in .gltf_validator/ at the repository root.
'use strict';

const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const prefix = process.env.GLTF_VALIDATOR_DIR ||
    path.join(root, '.gltf_validator');

let validator;
try {
  validator = require(path.join(prefix, 'node_modules', 'gltf-validator'));
} catch (e) {
  console.error(`validate_gltf.js: gltf-validator not found under ${prefix} ` +
                '(run src/tools/install_gltf_validator.sh)');
  process.exit(2);
}

async function main(files) {
  if (files.length === 0) {
    console.error('usage: node src/tools/validate_gltf.js FILE [FILE ...]');
    return 2;
  }
  let status = 0;
  for (const file of files) {
    let bytes;
    try {
      bytes = new Uint8Array(fs.readFileSync(file));
    } catch (e) {
      console.error(`validate_gltf.js: ${file}: ${e.message}`);
      return 2;
    }
    const report = await validator.validateBytes(bytes, {
      uri: path.basename(file), maxIssues: 0, writeTimestamp: false});
    const issues = report.issues;
    console.log(JSON.stringify({
      file: file,
      validatorVersion: report.validatorVersion,
      numErrors: issues.numErrors,
      numWarnings: issues.numWarnings,
      numInfos: issues.numInfos,
      numHints: issues.numHints,
      messages: issues.messages,
    }));
    if (issues.numErrors > 0) status = 1;
  }
  return status;
}

// process.exitCode, not process.exit(): exit() would cut off stdout still
// queued for a pipe.
main(process.argv.slice(2)).then(
    (status) => { process.exitCode = status; },
    (error) => {
      console.error(`validate_gltf.js: ${error}`);
      process.exitCode = 2;
    });

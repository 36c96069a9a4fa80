// Validates the Istio objects of a rendered chart with @kubernetes-models/istio (ajv over the
// Istio CRD schemas), a second opinion next to migrator/tests/istio.rs's own CRD check.
//
// Usage: node istio_validate.js RENDERED.yaml
// Prints one JSON line: {"validated": N, "errors": ["Kind name: message", ...]}; exits 1 when an
// object is invalid or its kind has no class. The package has no networking.istio.io/v1 classes
// and no security.istio.io/v1 PeerAuthentication; v1 matches v1beta1 field for field (tooling.md),
// so those are validated as v1beta1.

'use strict';

const fs = require('fs');
const yaml = require('js-yaml');

const pkg = '@kubernetes-models/istio';
// Candidate versions per apiVersion, first with a class for the kind wins.
const candidates = {
  'networking.istio.io/v1': ['networking.istio.io/v1beta1'],
  'networking.istio.io/v1beta1': ['networking.istio.io/v1beta1'],
  'security.istio.io/v1': ['security.istio.io/v1', 'security.istio.io/v1beta1'],
};

const docs = yaml.loadAll(fs.readFileSync(process.argv[2], 'utf8')).filter((d) => d);
const errors = [];
let validated = 0;
for (const doc of docs) {
  if (!String(doc.apiVersion || '').includes('istio.io')) continue;
  const what = `${doc.kind} ${doc.metadata && doc.metadata.name}`;
  const version = (candidates[doc.apiVersion] || []).find((v) => require(`${pkg}/${v}`)[doc.kind]);
  if (!version) {
    errors.push(`${what}: no ${pkg} class for ${doc.apiVersion}`);
    continue;
  }
  const Kind = require(`${pkg}/${version}`)[doc.kind];
  const obj = { ...doc, apiVersion: version };
  try {
    new Kind(obj).validate();
    validated += 1;
  } catch (e) {
    errors.push(`${what}: ${e.message}`);
  }
}
console.log(JSON.stringify({ validated, errors }));
process.exit(errors.length ? 1 : 0);

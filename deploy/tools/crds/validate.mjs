// Validates custom resources against their CRDs' OpenAPI schemas (kubernetes-models), offline:
//   node validate.mjs FILE...
// Objects of other kinds are left to kubernetes-validate; a custom kind not known here fails
// (nothing goes unvalidated). Exit 1 on any invalid object.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { Application, AppProject } from "@kubernetes-models/argo-cd/argoproj.io/v1alpha1";
import {
  PrometheusRule,
  ServiceMonitor,
  PodMonitor,
} from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import {
  DestinationRule,
  Gateway,
  VirtualService,
} from "@kubernetes-models/istio/networking.istio.io/v1";
import {
  AuthorizationPolicy,
  PeerAuthentication,
} from "@kubernetes-models/istio/security.istio.io/v1";

const MODELS = {
  "argoproj.io/v1alpha1/Application": Application,
  "argoproj.io/v1alpha1/AppProject": AppProject,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1/PodMonitor": PodMonitor,
  "networking.istio.io/v1/DestinationRule": DestinationRule,
  "networking.istio.io/v1/VirtualService": VirtualService,
  "networking.istio.io/v1/Gateway": Gateway,
  "security.istio.io/v1/PeerAuthentication": PeerAuthentication,
  "security.istio.io/v1/AuthorizationPolicy": AuthorizationPolicy,
};
// API groups Kubernetes itself serves (kubernetes-validate checks those).
const BUILTIN = /^(v1|(apps|batch|policy|autoscaling|networking\.k8s\.io|rbac\.authorization\.k8s\.io|storage\.k8s\.io|apiextensions\.k8s\.io)\/v\d\w*)$/;

let failures = 0;
let checked = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    const obj = doc.toJS();
    if (!obj) continue;
    const key = `${obj.apiVersion}/${obj.kind}`;
    const Model = MODELS[key];
    const where = `${file}: ${obj.kind} ${obj.metadata?.name}`;
    if (!Model) {
      if (!BUILTIN.test(obj.apiVersion)) {
        console.error(`${where}: no schema known for ${key}`);
        failures += 1;
      }
      continue;
    }
    try {
      new Model(obj).validate();
      checked += 1;
    } catch (error) {
      console.error(`${where}: ${error.message}`);
      failures += 1;
    }
  }
}
console.log(`custom resources: ${checked} valid, ${failures} invalid`);
process.exit(failures ? 1 : 0);

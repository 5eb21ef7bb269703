"""Schema source of the TradingBot CRD: spec (the safety gate's inputs, with their CEL
rules) and status. Listed in kinds.py; defaults here become crd_defaults.py.
"""

from __future__ import annotations

from .fields import IMAGE_PULL_SECRETS, RESOURCES, VPN, b, i, local_ref, n, obj, s, status_common

TRADING_BOT_SPEC = obj(
    "Desired state of a trading bot. The operator runs its Deployment at 1 replica only "
    "when the safety gate allows it (docs/safety-gate.md), else at 0.",
    {
        "image": s("Container image of the bot, e.g. myacr.azurecr.io/spy-bot:1.2.3.", minLength=1),
        "gatewayRef": local_ref("the IBGateway the bot sends orders through"),
        "mode": s(
            "paper or live. Must match the gateway's tradingMode; a live bot also needs a "
            "gateway with readOnlyApi false.",
            enum=["paper", "live"],
            default="paper",
        ),
        "armed": b(
            "Request to trade. Effective only with a present, unexpired approval, a Ready "
            "gateway, valid pull secrets, a passing VPN probe (when required) and no global "
            "halt. Defaults to false.",
            default=False,
        ),
        "approval": obj(
            "The second person's approval to arm the bot.",
            {
                "approvedBy": s("Who approved arming (a user name).", minLength=1, maxLength=253),
                "reason": s(
                    "Why the bot may trade; required for live bots.", minLength=1, maxLength=1024
                ),
                "expiresAt": s(
                    "RFC 3339 time after which the approval is void and the bot goes to 0 "
                    "replicas without any edit, e.g. 2026-11-25T21:00:00Z.",
                    format="date-time",
                ),
            },
        ),
        "strategy": obj(
            "Which strategy the bot runs, as data (docs/bot.md): rules that map an anomaly "
            "to a defined-risk vertical on its contract. Without rules the bot fades HIGH "
            "iv_residual anomalies and follows HIGH vol_oi anomalies, 1 lot, 5 wide.",
            {
                "name": s(
                    "A label for the strategy, shown in the audit log.",
                    default="iv-mean-reversion",
                    maxLength=63,
                ),
                "rules": {
                    "type": "array",
                    "maxItems": 32,
                    "description": "Rules in order; the first that matches a signal decides.",
                    "items": obj(
                        "One rule: when an anomaly matches, trade a vertical on its contract.",
                        {
                            "name": s("Rule name, shown in the audit log.", maxLength=63),
                            "when": obj(
                                "Which anomalies the rule matches.",
                                {
                                    "kind": s(
                                        "Anomaly kind, e.g. iv_residual or vol_oi (docs/wire-format.md).",
                                        pattern=r"^[a-z][a-z0-9_]{0,63}$",
                                    ),
                                    "minSeverity": s(
                                        "Lowest severity that matches.",
                                        enum=["LOW", "MEDIUM", "HIGH"],
                                        default="HIGH",
                                    ),
                                },
                                ["kind"],
                            ),
                            "action": s(
                                "fade: sell a rich option / buy a cheap one against the wing "
                                "(credit / debit vertical); follow: buy it against the wing "
                                "(debit vertical).",
                                enum=["fade", "follow"],
                            ),
                            "width": n(
                                "Strike distance to the wing, further out of the money.",
                                minimum=0.5,
                                maximum=100,
                                default=5,
                            ),
                            "quantity": i("Spreads per order.", minimum=1, maximum=1000, default=1),
                            "edge": n(
                                "USD per spread the limit may concede from the mid.",
                                minimum=0,
                                maximum=10,
                                default=0,
                            ),
                        },
                        ["when", "action"],
                    ),
                },
                "parameters": {
                    "type": "object",
                    "description": "Free-form string parameters for strategies of other bot images.",
                    "additionalProperties": {"type": "string", "description": "A parameter value."},
                },
            },
        ),
        "risk": obj(
            "Risk limits enforced by the bot's risk engine before every order (docs/bot.md). "
            "Every limit has a safe default; a refusal names the limit.",
            {
                "maxContracts": i(
                    "Largest total open position, in spreads, over all expiries.",
                    minimum=1,
                    maximum=10000,
                    default=1,
                ),
                "maxContractsPerOrder": i(
                    "Largest order, in spreads.", minimum=1, maximum=10000, default=1
                ),
                "maxPositionPerExpiry": i(
                    "Largest open position in one expiry, in spreads.",
                    minimum=1,
                    maximum=10000,
                    default=1,
                ),
                "maxOrderNotional": n(
                    "Largest max-loss of one order, USD (a debit spread's cost, a credit "
                    "spread's width minus credit, times 100 per spread).",
                    minimum=0,
                    default=5000,
                ),
                "maxOpenOrders": i(
                    "Most working orders at once.", minimum=1, maximum=1000, default=1
                ),
                "maxDailyLoss": n(
                    "Loss in USD (IB's daily P&L, realised + unrealised) at which the bot "
                    "halts until a human resets it.",
                    minimum=0,
                    default=1000,
                ),
                "reduceAtLossFraction": n(
                    "Fraction of maxDailyLoss at which the bot only reduces (opens nothing).",
                    minimum=0,
                    maximum=1,
                    default=0.8,
                ),
                "maxOrdersPerMinute": i("Order rate limit.", minimum=1, maximum=600, default=5),
                "maxConsecutiveRejects": i(
                    "Rejects in a row that trip the circuit breaker (halt until reset).",
                    minimum=1,
                    maximum=100,
                    default=3,
                ),
                "tradingHours": s(
                    "regular: only inside NYSE regular sessions (holidays and half days from "
                    "the exchange calendar); any: no time limit (tests, paper).",
                    enum=["regular", "any"],
                    default="regular",
                ),
                "allowedSymbols": {
                    "type": "array",
                    "maxItems": 16,
                    "description": "Underlyings the bot may trade. Default [SPY].",
                    "items": s("A symbol.", pattern=r"^[A-Z][A-Z0-9.]{0,9}$"),
                },
                "allowedRights": {
                    "type": "array",
                    "maxItems": 2,
                    "description": "Option rights the bot may trade (C, P). Default both.",
                    "items": s("C or P.", enum=["C", "P"]),
                },
                "minDTE": i(
                    "Fewest days to expiry the bot may trade.", minimum=0, maximum=3650, default=1
                ),
                "maxDTE": i(
                    "Most days to expiry the bot may trade.", minimum=0, maximum=3650, default=45
                ),
            },
            **{
                "x-kubernetes-validations": [
                    {
                        "rule": "!has(self.minDTE) || !has(self.maxDTE) || self.minDTE <= self.maxDTE",
                        "message": "minDTE must not exceed maxDTE",
                        "fieldPath": ".minDTE",
                    }
                ]
            },
        ),
        "backend": obj(
            "Where the bot reads signals: the backend's /api/v1/negotiate (realtime) and "
            "query API (backfill after a reconnect); with tokenSecretRef, where its audit "
            "lines go too (POST /api/v1/audit, docs/bot.md).",
            {
                "url": s(
                    "Backend base URL, e.g. http://spy-backend.spy.svc:8000.", pattern="^https?://"
                ),
                "tokenSecretRef": obj(
                    "Secret with the backend's audit bearer token (SPY_BACKEND_TOKEN).",
                    {
                        "name": s("Secret name.", minLength=1),
                        "key": s("Key in the Secret.", default="token"),
                    },
                    ["name"],
                ),
            },
            ["url"],
        ),
        "imagePullSecrets": IMAGE_PULL_SECRETS,
        "vpn": VPN,
        "resources": RESOURCES,
    },
    ["image", "gatewayRef"],
    **{
        "x-kubernetes-validations": [
            {
                "rule": "!self.armed || (has(self.approval) && has(self.approval.approvedBy) && has(self.approval.expiresAt))",
                "message": "armed: true requires approval.approvedBy and approval.expiresAt",
                "fieldPath": ".approval",
                "reason": "FieldValueRequired",
            },
            {
                "rule": "self.mode != 'live' || !has(self.approval) || (has(self.approval.reason) && self.approval.reason.trim().size() > 0)",
                "message": "mode: live needs an explicit approval.reason",
                "fieldPath": ".approval.reason",
                "reason": "FieldValueRequired",
            },
        ]
    },
)

TRADING_BOT_STATUS = status_common(
    {
        "replicas": i(
            "Replicas of the bot's Deployment as last observed (0 or 1): what the safety "
            "gate allows once the Enforced condition is True."
        ),
        "readyReplicas": i("Ready replicas of the bot's Deployment."),
        "armed": b(
            "Effective armed state: true only when the gate allows trading and the "
            "Deployment carries exactly the operator's manifest (Enforced)."
        ),
        "reason": s("Why the gate allows or holds the bot (CamelCase), e.g. NotArmed."),
        "message": s("Human-readable gate decision."),
        "ibClientId": i("IB API client id allocated to this bot on its gateway."),
        "deployment": s("Name of the bot's Deployment."),
    }
)

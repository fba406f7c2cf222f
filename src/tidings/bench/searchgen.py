"""The corpus of ``tidings bench search``: chat text from a known vocabulary, and who
may read it, made the same way again from the same seed.

- **Users and conversations**: ``users`` accounts and ``conversations`` conversations of
  varied sizes (direct pairs, small and medium groups, a few large ones). Every member
  joins when the conversation is made; in groups some members leave after a given seq
  (``left_seq``): they may read seq 1..left_seq of it and nothing after, so the
  visibility check of every hit is not trivial.
- **Messages**: ``messages`` in total, spread unevenly (a few busy conversations, a long
  tail of quiet ones), each sent by a member active at that seq. Bodies are Chinese,
  English, or both in one sentence, made from templates over topics (databases,
  deployments, incidents, caches) with *markers* that make known answers: incident ids
  (``INC-1234``), addresses (``10.3.7.21``), versions (``v2.3``), product names and
  Chinese project code names (``星河计划``).
- **Occurrences**: for every probe term (each marker, and a fixed list of common words
  and mixed terms, ``PROBE_WORDS``) the seqs of the messages whose text contains it,
  per conversation. With the memberships this gives the messages a user must find for a
  query of one probe term (``expected``), and so the recall of the search.

Nothing here uses the search code: containment is literal (case-insensitive), which is
what a user means by "the messages that say INC-1234".
"""

from __future__ import annotations

import bisect
import random
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field

# --- the vocabulary ---------------------------------------------------------------

PRODUCTS = (
    "Redis", "PostgreSQL", "Kafka", "Nginx", "Grafana", "Prometheus", "MySQL",
    "Elasticsearch", "RabbitMQ", "Kubernetes", "Tidings", "ClickHouse",
)  # fmt: skip
EN_DB = (
    "database", "migration", "replica", "index", "query", "schema", "backup", "shard",
    "vacuum", "transaction",
)  # fmt: skip
EN_DEPLOY = (
    "deployment", "rollout", "rollback", "canary", "cluster", "release", "pipeline",
    "upgrade",
)  # fmt: skip
EN_INCIDENT = (
    "incident", "outage", "latency", "timeout", "alert", "postmortem", "failover",
    "regression",
)  # fmt: skip
EN_VERBS = ("check", "restart", "review", "monitor", "investigate", "schedule", "approve")
EN_GLUE = ("today", "tonight", "after lunch", "before Friday", "asap", "this week")

CN_DB = ("数据库", "迁移", "索引", "查询", "备份", "主从复制", "分库分表", "慢查询")
CN_DEPLOY = ("部署", "上线", "回滚", "灰度发布", "集群", "扩容", "配置", "流水线")
CN_INCIDENT = ("故障", "告警", "延迟", "超时", "宕机", "复盘", "排查", "报错")
CN_INFRA = ("缓存", "负载均衡", "服务器", "监控", "机房", "网关", "消息队列", "容器")
CN_ACTIONS = ("需要确认", "已经完成", "正在处理", "明天再看", "请尽快跟进", "先暂停")
CN_PEOPLE = ("运维组", "开发团队", "测试同学", "产品经理", "值班同事", "架构组")
CN_CODE_A = (
    "星河", "北斗", "天枢", "玄武", "青龙", "朱雀", "麒麟", "凤凰", "鲲鹏", "神舟",
    "天宫", "祝融", "羲和", "悟空", "白泽", "烛龙",
)  # fmt: skip
CN_CODE_B = ("计划", "项目", "工程", "平台")

# Common terms whose occurrences are kept too (each is a one-term query with a known
# answer): English words, Chinese words inside longer runs, and mixed ones.
PROBE_WORDS = (
    "database", "rollback", "latency", "outage", "canary",
    "Redis", "Kafka", "PostgreSQL",
    "数据库", "负载均衡", "迁移", "回滚", "告警", "缓存", "慢查询", "灰度发布",
    "Redis缓存", "Kafka消息队列",
)  # fmt: skip

MINOR_VERSIONS = tuple(f"v{a}.{b}" for a in range(1, 5) for b in range(10))

DIRECT, GROUP = "direct", "group"


def incident_id(i: int) -> str:
    return f"INC-{1000 + i}"


def address(i: int) -> str:
    return f"10.{(i >> 12) % 256}.{(i >> 6) % 64 + 1}.{i % 64 + 100}"


def code_name(i: int) -> str:
    return CN_CODE_A[i % len(CN_CODE_A)] + CN_CODE_B[(i // len(CN_CODE_A)) % len(CN_CODE_B)]


# --- the corpus -------------------------------------------------------------------


@dataclass
class Membership:
    """One member of one conversation: ``left_seq`` None while a member."""

    user: int
    left_seq: int | None = None


@dataclass
class ConvSpec:
    index: int
    kind: str
    creator: int
    members: list[Membership]
    messages: int

    limits: dict[int, int | None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.limits = {m.user: m.left_seq for m in self.members}

    def limit_of(self, user: int) -> int | None:
        """The highest seq ``user`` may read (0: not a member, None: no limit)."""
        return self.limits.get(user, 0)

    def leaves(self) -> list[tuple[int, int]]:
        """(left_seq, user) of every member who leaves, in the order they leave."""
        return sorted((m.left_seq, m.user) for m in self.members if m.left_seq is not None)


@dataclass
class Generated:
    """One message: conversation index, seq, sender (user index), body, and its time
    as a fraction of the corpus' time span (0..1, increasing with seq)."""

    conv: int
    seq: int
    sender: int
    body: str
    at: float
    terms: list[str] = field(default_factory=list)
    """The markers planted in ``body``."""
    roll: float = 1.0
    """A draw of the message's own (0..1): the loader picks the messages it edits or
    recalls by it, the same whatever order the conversations are read in."""


@dataclass
class Corpus:
    """The memberships, made at construction; the messages, made by ``messages()``
    (which also records the occurrences of the probe terms)."""

    seed: int
    users: int
    conversations: int
    total_messages: int
    leave_fraction: float = 0.15
    convs: list[ConvSpec] = field(init=False)
    occurrences: dict[str, dict[int, array[int]]] = field(init=False)
    markers: dict[str, list[str]] = field(init=False)
    """kind ('incident', 'address', 'code', 'revision') -> the marker terms used."""
    recalled: set[tuple[int, int]] = field(init=False)
    """(conversation, seq) of the messages recalled after the load."""
    edited: dict[tuple[int, int], str] = field(init=False)
    """(conversation, seq) -> the new body of the messages edited after the load."""
    old_markers: dict[tuple[int, int], list[str]] = field(init=False)
    """(conversation, seq) -> the markers an edited or recalled message said before."""

    def __post_init__(self) -> None:
        if self.users < 2:
            raise ValueError("at least 2 users")
        if self.conversations < 1:
            raise ValueError("at least 1 conversation")
        rng = random.Random(self.seed)
        counts = _spread(self.total_messages, self.conversations, rng)
        self._pairs: set[frozenset[int]] = set()  # a direct conversation per pair, once
        self._of_user: dict[int, list[ConvSpec]] = {}
        self.convs = [self._conversation(i, counts[i], rng) for i in range(self.conversations)]
        pool = max(20, min(8999, self.total_messages // 200))
        self.markers = {
            "incident": [incident_id(i) for i in range(pool)],
            "address": [address(i) for i in range(pool)],
            "code": [code_name(i) for i in range(len(CN_CODE_A) * len(CN_CODE_B))],
            "revision": [],
        }
        self.recalled = set()
        self.edited = {}
        self.old_markers = {}
        self.occurrences = {}
        self._probes = [p.casefold() for p in PROBE_WORDS]

    def _conversation(self, index: int, messages: int, rng: random.Random) -> ConvSpec:
        roll = rng.random()
        if roll < 0.2:
            size = 2
        elif roll < 0.8:
            size = rng.randint(3, 12)
        elif roll < 0.95:
            size = rng.randint(13, 60)
        else:
            size = rng.randint(61, 300)
        size = min(size, self.users)
        kind = DIRECT if size == 2 else GROUP
        people = rng.sample(range(self.users), size)
        if kind == DIRECT:
            for _ in range(20):
                if frozenset(people) not in self._pairs:
                    break
                people = rng.sample(range(self.users), size)
            else:  # every pair tried is taken: a small group instead
                kind = GROUP
                people = rng.sample(range(self.users), min(3, self.users))
            self._pairs.add(frozenset(people))
        members = [Membership(u) for u in people]
        if kind == GROUP and messages > 1:
            for m in members[1:]:  # the creator stays
                if rng.random() < self.leave_fraction:
                    m.left_seq = rng.randint(1, messages - 1)
        return ConvSpec(index, kind, people[0], members, messages)

    # --- who may read what ---------------------------------------------------------
    def conversations_of(self, user: int) -> list[ConvSpec]:
        """The conversations ``user`` is or was a member of."""
        if not self._of_user:
            for c in self.convs:
                for m in c.members:
                    self._of_user.setdefault(m.user, []).append(c)
        return self._of_user.get(user, [])

    def visible(self, user: int, conv: int, seq: int) -> bool:
        limit = self.convs[conv].limit_of(user)
        return limit is None or seq <= limit

    def expected(self, term: str, user: int, conv: int | None = None) -> int:
        """How many messages containing ``term`` ``user`` may read (in ``conv`` only)."""
        per_conv = self.occurrences.get(term.casefold(), {})
        total = 0
        for ci, seqs in per_conv.items():
            if conv is not None and ci != conv:
                continue
            limit = self.convs[ci].limit_of(user)
            if limit == 0:
                continue
            total += len(seqs) if limit is None else bisect.bisect_right(seqs, limit)
        return total

    # --- the messages ---------------------------------------------------------------
    def messages(self) -> Iterator[Generated]:
        """Every message, conversation by conversation, in seq order."""
        self.occurrences = {}
        for conv in self.convs:
            yield from self.messages_of(conv)

    def messages_of(self, conv: ConvSpec) -> Iterator[Generated]:
        """The messages of one conversation in seq order (the same whatever the order
        conversations are read in; each message's probe terms are recorded as it is
        made: read each conversation once after ``occurrences`` is reset)."""
        rng = random.Random(self.seed * 1_000_003 + conv.index)
        leaves = conv.leaves()
        active = [m.user for m in conv.members]
        li = 0
        for seq in range(1, conv.messages + 1):
            # members who left before this seq no longer send
            while li < len(leaves) and leaves[li][0] < seq:
                active.remove(leaves[li][1])
                li += 1
            body, terms = self._body(rng)
            self._record(conv.index, seq, body, terms)
            sender = rng.choice(active)
            at = seq / (conv.messages + 1)
            yield Generated(conv.index, seq, sender, body, at, terms, rng.random())

    def _terms_of(self, body: str, planted: list[str]) -> set[str]:
        folded = body.casefold()
        found = {t.casefold() for t in planted}
        found.update(p for p in self._probes if p in folded)
        return found

    def _record(self, conv: int, seq: int, body: str, terms: list[str]) -> None:
        for term in self._terms_of(body, terms):
            per_conv = self.occurrences.setdefault(term, {})
            seqs = per_conv.get(conv)
            if seqs is None:
                seqs = per_conv[conv] = array("i")
            seqs.append(seq)

    def _forget(self, g: Generated) -> None:
        self.old_markers[(g.conv, g.seq)] = list(g.terms)
        for term in self._terms_of(g.body, g.terms):
            self.occurrences[term][g.conv].remove(g.seq)

    # --- edits and recalls after the load ----------------------------------------------
    def change_of(self, g: Generated, wanted: int) -> str | None:
        """'edit', 'recall' or None: about ``wanted`` of the messages carrying a marker
        are changed, each by its sender, who must still be a member then."""
        if not g.terms or wanted <= 0:
            return None
        share = min(1.0, wanted / max(1.0, 0.13 * self.total_messages))
        if g.roll >= share or self.convs[g.conv].limit_of(g.sender) is not None:
            return None
        return "recall" if g.roll < share / 2 else "edit"

    def recall(self, g: Generated) -> None:
        """``g`` was recalled: it contains nothing any more."""
        self._forget(g)
        self.recalled.add((g.conv, g.seq))

    def edit(self, g: Generated) -> str:
        """``g`` is edited: its new body (a revision marker of its own instead of its
        old text), recorded; returns it."""
        revision = f"REV-{10000 + len(self.markers['revision'])}"
        body = f"已更正 corrected, see {revision}"
        self._forget(g)
        self._record(g.conv, g.seq, body, [revision])
        self.markers["revision"].append(revision)
        self.edited[(g.conv, g.seq)] = body
        return body

    def _body(self, rng: random.Random) -> tuple[str, list[str]]:
        """A body and the markers planted in it."""
        terms: list[str] = []
        roll = rng.random()
        product = rng.choice(PRODUCTS)
        version = rng.choice(MINOR_VERSIONS)
        if roll < 0.35:
            text = _chinese(rng, product, version)
        elif roll < 0.65:
            text = _english(rng, product, version)
        else:
            text = _mixed(rng, product, version)
        extra = rng.random()
        if extra < 0.06:
            inc = rng.choice(self.markers["incident"])
            terms.append(inc)
            text += rng.choice((f"，见 {inc}", f" (see {inc})", f"，关联工单{inc}", f" re {inc}"))
        elif extra < 0.11:
            ip = rng.choice(self.markers["address"])
            terms.append(ip)
            text += rng.choice((f"，机器 {ip}", f" on host {ip}", f"，{ip}上的服务"))
        elif extra < 0.13:
            code = rng.choice(self.markers["code"])
            terms.append(code)
            text += rng.choice((f"，属于{code}", f" for {code}", f"（{code}）"))
        return text, terms


def _spread(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` split over ``parts`` unevenly (Zipf-like, shuffled), exactly."""
    weights = [1.0 / (rank + 5) ** 0.9 for rank in range(parts)]
    rng.shuffle(weights)
    scale = total / sum(weights)
    counts = [int(w * scale) for w in weights]
    short = total - sum(counts)
    order = sorted(range(parts), key=lambda i: w_frac(weights[i] * scale), reverse=True)
    for i in order[:short]:
        counts[i] += 1
    return counts


def w_frac(x: float) -> float:
    return x - int(x)


def _chinese(rng: random.Random, product: str, version: str) -> str:
    c = rng.choice
    templates = (
        lambda: f"分布式{c(CN_DB)}{c(('迁移方案', '优化方案', '切换计划'))}{c(CN_ACTIONS)}",
        lambda: f"{c(CN_PEOPLE)}说{c(CN_INFRA)}{c(CN_INCIDENT)}了，{c(CN_ACTIONS)}",
        lambda: f"今晚{c(CN_DEPLOY)}，{c(CN_PEOPLE)}{c(CN_ACTIONS)}",
        lambda: f"使用{c(CN_INFRA)}器之后{c(CN_INCIDENT)}少了很多",
        lambda: f"{c(CN_DB)}的{c(CN_INCIDENT)}问题{c(CN_ACTIONS)}",
        lambda: f"关于{c(CN_DEPLOY)}和{c(CN_DB)}的讨论，{c(CN_PEOPLE)}{c(CN_ACTIONS)}",
    )
    return c(templates)()


def _english(rng: random.Random, product: str, version: str) -> str:
    c = rng.choice
    templates = (
        lambda: f"The {c(EN_DB)} on {product} needs a {c(EN_DEPLOY)} {c(EN_GLUE)}",
        lambda: f"Can someone {c(EN_VERBS)} the {product} {c(EN_INCIDENT)}?",
        lambda: f"{product} {version} {c(EN_DEPLOY)} is done, {c(EN_INCIDENT)} looks fine",
        lambda: f"We saw {c(EN_INCIDENT)} spikes after the {c(EN_DB)} {c(EN_DEPLOY)}",
        lambda: f"Please {c(EN_VERBS)} the {c(EN_DB)} {c(EN_GLUE)}",
        lambda: f"{c(EN_INCIDENT).capitalize()} in {product}: {c(EN_VERBS)} the {c(EN_DB)}",
    )
    return c(templates)()


def _mixed(rng: random.Random, product: str, version: str) -> str:
    c = rng.choice
    templates = (
        lambda: f"{product}{c(CN_INFRA)}出现{c(CN_INCIDENT)}，please {c(EN_VERBS)}",
        lambda: f"{version}版本的{c(CN_DEPLOY)}{c(CN_ACTIONS)}",
        lambda: f"Redis缓存{c(CN_INCIDENT)}，{c(EN_DB)} {c(EN_GLUE)}",
        lambda: f"Kafka消息队列的{c(EN_INCIDENT)}要{c(EN_VERBS)}一下",
        lambda: f"{c(CN_PEOPLE)} will {c(EN_VERBS)} the {product} {c(CN_DB)}",
        lambda: f"{product} {version} 的{c(CN_DB)}{c(EN_DEPLOY)}，{c(CN_ACTIONS)}",
    )
    return c(templates)()

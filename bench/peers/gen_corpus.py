#!/usr/bin/env python3
"""Deterministic benchmark corpus generator (stdlib only).

Writes, into OUT_DIR (default $PEERS_WORK):
  corpus.txt  ~2 MiB of mixed English prose, code (Python/Rust/JS/SQL), JSON
              (pretty and compact) and Korean/Japanese/Chinese text, UTF-8.
  chat.json   a 20-message chat (1 system + 19 user/assistant turns) for the
              pre-flight "count the prompt" benchmark.
and prints the byte sizes and sha256 of both, so a drifted generator is noticed.

Only random.Random(SEED) primitives that are stable across CPython versions
are used (random(), randrange/randint/choice via _randbelow), so the output is
byte-identical on any Python >= 3.8.  Nothing here may contain tiktoken special
tokens (e.g. "<|endoftext|>"), so encode() and encode_ordinary() see the same
text.

Usage: python3 gen_corpus.py [OUT_DIR] [--bytes N]
"""
import hashlib
import json
import os
import random
import sys

SEED = 20240611
TARGET_BYTES = 2 * 1024 * 1024

EN = """the of and to in is that for it as was with be by on not he i this are or his from at
which but have an they you were her she there one all we their has been would when if more
no out so said what up its about into than them can only other new some could time these two
may then do first any my now such like our over man me even most made after also did many
before must through back years where much your way well down should because each just those
people how too little state good very make world still own see men work long get here between
both life being under never day same another know while last might us great old year off come
since against go came right used take three system program data model token cost budget usage
latency request response cache cached prompt completion price invoice billing tenant account
quarter revenue margin forecast pipeline deploy release cluster region replica shard queue
worker thread process memory buffer allocation benchmark throughput measure median percentile
customer support ticket escalation policy contract agreement vendor supplier shipment warehouse
inventory order refund payment gateway settlement reconcile ledger balance transaction audit
compliance privacy consent retention archive backup restore incident outage postmortem root
cause mitigation rollback hotfix patch upgrade migration schema index query planner optimizer
language translation summary abstract introduction method result discussion conclusion figure
table appendix reference citation author editor journal conference proceedings volume issue
river mountain valley forest ocean island desert village city harbor bridge tower castle garden
morning evening night summer winter spring autumn weather storm rain snow wind cloud sunlight
quickly slowly carefully rarely usually often almost nearly exactly roughly approximately
beautiful difficult important different possible available significant particular special
however therefore moreover nevertheless meanwhile furthermore consequently accordingly
understand remember consider describe explain develop provide include continue require
""".split()

NAMES = """Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy Rupert
Sybil Trent Victor Walter Seoul Busan Tokyo Osaka Beijing Shanghai London Paris Berlin Madrid
Toronto Austin Denver Chicago OpenAI Anthropic Mistral Gemini Llama Qwen DeepSeek Kubernetes
PostgreSQL Redis Kafka Tokio Rust Python TypeScript""".split()

KO = """안녕하세요 감사합니다 사용자 토큰 비용 계산 모델 응답 요청 캐시 입력 출력 가격 청구서 예산
회사 개발자 서버 데이터 분석 결과 보고서 회의 일정 프로젝트 관리 시스템 설정 오류 수정 배포 버전
업데이트 문서 설명 예시 질문 답변 번역 요약 검색 추천 학습 추론 성능 측정 속도 메모리 사용량 파일
서울 부산 대한민국 오늘 내일 어제 아침 저녁 날씨 커피 점심 저녁식사 가족 친구 학교 선생님 학생
책 음악 영화 여행 바다 산 강 하늘 도시 마을 시장 가게 병원 은행 공항 기차 버스 지하철 자동차
빠르게 천천히 정확하게 아름다운 중요한 새로운 어려운 쉬운 많은 적은 좋은 나쁜 작은 큰
합니다 했습니다 입니다 있습니다 없습니다 됩니다 하겠습니다 그리고 하지만 그래서 또한 따라서""".split()

JA = """こんにちは ありがとう トークン 料金 計算 モデル 応答 リクエスト キャッシュ 入力 出力 開発者
東京 大阪 今日 明日 天気 会議 資料 報告書 プロジェクト 管理 設定 エラー 修正 リリース
です ます でした しました されます について による ための""".split()

ZH = """你好 谢谢 令牌 费用 计算 模型 响应 请求 缓存 输入 输出 价格 开发者 北京 上海 今天 明天
会议 报告 项目 管理 配置 错误 修复 发布 性能 测试 数据 分析 结果 我们 他们 因为 所以 但是""".split()

IDENT = """user_id request_id model_name prompt_tokens completion_tokens cached_tokens total_cost
price_table usage_record tenant budget_limit rate_per_million encode decode tokenizer vocab
merge_rank byte_pairs batch_size num_threads retry_count timeout_ms response_body headers
payload session client server handler router config settings logger metrics counter histogram
span trace context buffer offset length capacity index cursor result error value items""".split()

KEYS = """id object created model usage prompt_tokens completion_tokens total_tokens cached_tokens
choices index message role content finish_reason name type text input output cost currency
tenant_id project region tags metadata timestamp latency_ms status ok error code details""".split()


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def word(self):
        r = self.r
        x = r.random()
        if x < 0.86:
            return r.choice(EN)
        if x < 0.93:
            return r.choice(NAMES)
        if x < 0.97:
            return str(r.randint(0, 99999))
        # rare / made-up word, gives the BPE a long tail
        letters = "abcdefghijklmnopqrstuvwxyz"
        return "".join(r.choice(letters) for _ in range(r.randint(4, 11)))

    def sentence(self):
        r = self.r
        n = r.randint(6, 24)
        words = [self.word() for _ in range(n)]
        words[0] = words[0][:1].upper() + words[0][1:]
        for i in range(1, n - 1):
            if r.random() < 0.08:
                words[i] += ","
        return " ".join(words) + r.choice([".", ".", ".", ".", "?", "!", ";", ":"])

    def prose(self):
        r = self.r
        paras = []
        for _ in range(r.randint(1, 4)):
            paras.append(" ".join(self.sentence() for _ in range(r.randint(2, 7))))
        if r.random() < 0.3:
            paras.insert(0, "## " + " ".join(self.word() for _ in range(r.randint(2, 6))).title())
        if r.random() < 0.25:
            paras.append("\n".join("- " + self.sentence() for _ in range(r.randint(2, 5))))
        return "\n\n".join(paras)

    def ident(self):
        r = self.r
        base = r.choice(IDENT)
        if r.random() < 0.3:
            base += "_" + r.choice(IDENT).split("_")[0]
        if r.random() < 0.1:
            base += str(r.randint(0, 9))
        return base

    def camel(self):
        return "".join(p.title() for p in self.ident().split("_"))

    def expr(self):
        r = self.r
        k = r.random()
        if k < 0.3:
            return f"{self.ident()} + {r.randint(0, 4096)}"
        if k < 0.5:
            return f"{self.ident()}.{self.ident()}({self.ident()})"
        if k < 0.7:
            return f"{self.ident()} * {r.random():.6f}"
        if k < 0.85:
            return f'"{" ".join(self.word() for _ in range(r.randint(1, 5)))}"'
        return f"{self.ident()}[{r.randint(0, 63)}]"

    def code_python(self):
        r = self.r
        fn = self.ident()
        args = ", ".join(self.ident() for _ in range(r.randint(0, 4)))
        lines = [f"def {fn}({args}):", f'    """{self.sentence()}"""']
        for _ in range(r.randint(3, 14)):
            c = r.random()
            if c < 0.5:
                lines.append(f"    {self.ident()} = {self.expr()}")
            elif c < 0.7:
                lines.append(f"    if {self.ident()} > {r.randint(0, 1000)}:")
                lines.append(f"        return {self.expr()}")
            elif c < 0.85:
                lines.append(f"    for {self.ident()} in range({r.randint(1, 512)}):")
                lines.append(f"        {self.ident()}.append({self.expr()})")
            else:
                lines.append(f"    # {self.sentence()}")
        lines.append(f"    return {self.ident()}")
        return "```python\n" + "\n".join(lines) + "\n```"

    def code_rust(self):
        r = self.r
        name = self.camel()
        fields = [f"    pub {self.ident()}: {r.choice(['u64', 'f64', 'String', 'Vec<u32>', 'Option<u64>', 'bool'])}," for _ in range(r.randint(2, 6))]
        body = [f"        let {self.ident()} = {self.expr()};" for _ in range(r.randint(2, 8))]
        s = (f"#[derive(Debug, Clone)]\npub struct {name} {{\n" + "\n".join(fields) + "\n}\n\n"
             f"impl {name} {{\n    pub fn {self.ident()}(&self, {self.ident()}: u64) -> Result<u64, Error> {{\n"
             + "\n".join(body) + f"\n        Ok({self.ident()})\n    }}\n}}")
        return "```rust\n" + s + "\n```"

    def code_js(self):
        r = self.r
        lines = [f"export async function {self.camel()[0].lower() + self.camel()[1:]}({self.ident()}, opts = {{}}) {{"]
        for _ in range(r.randint(2, 10)):
            c = r.random()
            if c < 0.5:
                lines.append(f"  const {self.ident()} = await {self.ident()}.{self.ident()}({self.expr()});")
            elif c < 0.8:
                lines.append(f"  if (!{self.ident()}) throw new Error(`{self.sentence()}`);")
            else:
                lines.append(f"  // {self.sentence()}")
        lines.append(f"  return {{ {self.ident()}, {self.ident()} }};\n}}")
        return "```js\n" + "\n".join(lines) + "\n```"

    def code_sql(self):
        r = self.r
        cols = ", ".join(self.ident() for _ in range(r.randint(2, 6)))
        return (f"```sql\nSELECT {cols}\nFROM {self.ident()} AS t\nJOIN {self.ident()} u ON u.id = t.{self.ident()}\n"
                f"WHERE t.{self.ident()} >= {r.randint(0, 10**6)} AND t.region = '{r.choice(NAMES)}'\n"
                f"GROUP BY {self.ident()}\nORDER BY {self.ident()} DESC\nLIMIT {r.randint(1, 500)};\n```")

    def code(self):
        return self.r.choice([self.code_python, self.code_python, self.code_rust, self.code_js, self.code_sql])()

    def jvalue(self, depth):
        r = self.r
        c = r.random()
        if depth < 3 and c < 0.15:
            return {r.choice(KEYS): self.jvalue(depth + 1) for _ in range(r.randint(1, 5))}
        if depth < 3 and c < 0.25:
            return [self.jvalue(depth + 1) for _ in range(r.randint(1, 4))]
        if c < 0.45:
            return r.randint(0, 10**7)
        if c < 0.6:
            return round(r.random() * 1000, 6)
        if c < 0.68:
            return r.random() < 0.5
        if c < 0.72:
            return None
        if c < 0.8:
            return f"{self.ident()}-{r.randrange(16**12):012x}"
        if c < 0.9:
            return " ".join(self.word() for _ in range(r.randint(1, 8)))
        return self.cjk_phrase(r.randint(2, 6))

    def json_block(self):
        r = self.r
        obj = {r.choice(KEYS): self.jvalue(0) for _ in range(r.randint(3, 9))}
        if r.random() < 0.5:
            s = json.dumps(obj, indent=2, ensure_ascii=False)
        else:
            s = json.dumps(obj, separators=(",", ":"), ensure_ascii=r.random() < 0.2)
        return "```json\n" + s + "\n```"

    def cjk_phrase(self, n):
        r = self.r
        lst = r.choice([KO, KO, KO, JA, ZH])
        sep = " " if lst is KO else ""
        return sep.join(r.choice(lst) for _ in range(n))

    def cjk(self):
        r = self.r
        out = []
        for _ in range(r.randint(4, 12)):
            lst = KO if r.random() < 0.7 else r.choice([JA, ZH])
            if lst is KO:
                s = " ".join(r.choice(KO) for _ in range(r.randint(4, 16))) + r.choice([".", "?", "!"])
            else:
                s = "".join(r.choice(lst) for _ in range(r.randint(4, 14))) + "。"
            if r.random() < 0.2:  # mixed-script line, common in real chats
                s += " " + self.sentence()
            out.append(s)
        return "\n".join(out)

    def block(self):
        x = self.r.random()
        if x < 0.45:
            return self.prose()
        if x < 0.70:
            return self.code()
        if x < 0.88:
            return self.json_block()
        return self.cjk()


def make_corpus(target=TARGET_BYTES):
    g = Gen(SEED)
    parts, size = [], 0
    while size < target:
        b = g.block()
        parts.append(b)
        size += len(b.encode("utf-8")) + 2
    return "\n\n".join(parts) + "\n"


def make_chat():
    g = Gen(SEED + 1)
    msgs = [{"role": "system", "content": "You are a careful assistant. " + g.prose()}]
    for i in range(19):
        if i % 2 == 0:
            content = g.prose() if g.r.random() < 0.7 else g.cjk()
            msgs.append({"role": "user", "content": content})
        else:
            content = "\n\n".join([g.prose(), g.r.choice([g.code, g.json_block, g.cjk])()])
            msgs.append({"role": "assistant", "content": content})
    return msgs


def main():
    args = sys.argv[1:]
    target = TARGET_BYTES
    if "--bytes" in args:
        i = args.index("--bytes")
        target = int(args[i + 1])
        del args[i:i + 2]
    out = args[0] if args else os.environ["PEERS_WORK"]
    os.makedirs(out, exist_ok=True)
    corpus = make_corpus(target).encode("utf-8")
    chat = json.dumps(make_chat(), ensure_ascii=False, indent=1).encode("utf-8")
    for name, data in (("corpus.txt", corpus), ("chat.json", chat)):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes sha256={hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()

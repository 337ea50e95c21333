#!/bin/bash
# The peer kit (../shared/peer-bench/README.md) against this checkout's anima, every PID recorded.
#   run.sh OUT [busy|bursty] [SYSTEMS] [CLIENT...]
# busy: one core kept busy by a spinning process; bursty: two processes that spin and sleep at
# random (0.05-0.5 s each). SYSTEMS: "anima" or "anima,pipecat_vad". CLIENT: "kit" (the kit's
# bench_client.py) and/or "ear" (ear_client.py: the same client without its 80 ms playout
# buffer); each client runs its own blocks, one after the other, on the same servers.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
OUT=${1:?OUT folder}
LOAD=${2:-busy}
SYSTEMS=${3:-anima,pipecat_vad}
shift $(( $# < 3 ? $# : 3 ))
CLIENTS=${*:-kit}
PV=${PEER_PYTHON:-/work/.peer-venv/bin/python}
KIT=$ROOT/../shared/peer-bench
QUESTIONS=${QUESTIONS:-/work/peer/questions.json}
BLOCKS=${BLOCKS:-4}
mkdir -p "$OUT"
cd "$ROOT"
SP=$("$ROOT/.venv/bin/python" -c "import site; print(site.getsitepackages()[0])")
$PV $KIT/llm_server.py --port 18190 --log $OUT/llm.jsonl > $OUT/llm.log 2>&1 & echo $! > $OUT/pids
cat > $OUT/peer.toml <<T
[brain]
backend = "openai"
base_url = "http://127.0.0.1:18190/v1"
model = "fixed"
api_key = "local"
[voice]
prewarm = false
cache_mb = 0
T
URLS=anima=http://127.0.0.1:18865
ANIMA_VOICE__PREWARM=false PYTHONPATH=$ROOT "$ROOT/.venv/bin/python" -m anima.cli --config $OUT/peer.toml \
  serve --port 18865 > $OUT/anima.log 2>&1 & echo $! >> $OUT/pids
if [[ $SYSTEMS == *pipecat_vad* ]]; then
  ANIMA_SITE_PACKAGES=$SP OMP_NUM_THREADS=2 $PV $KIT/pipecat_server.py --port 18867 \
    --llm-url http://127.0.0.1:18190/v1 --turn vad --tap-log $OUT/vad_taps.jsonl \
    > $OUT/pipecat_vad.log 2>&1 & echo $! >> $OUT/pids
  URLS=$URLS,pipecat_vad=http://127.0.0.1:18867
fi
sleep 40
if [ "$LOAD" = bursty ]; then
  for s in 1 2; do $PV -c 'import random,time
random.seed('$s')
while True:
    end=time.monotonic()+random.uniform(0.05,0.5)
    while time.monotonic()<end: pass
    time.sleep(random.uniform(0.05,0.5))' & echo $! >> $OUT/pids; done
else
  $PV -c 'while True: pass' & echo $! >> $OUT/pids
fi
echo "load before: $(cat /proc/loadavg)" > $OUT/load.txt
for c in $CLIENTS; do
  script=$KIT/bench_client.py
  [ "$c" = ear ] && script=$HERE/ear_client.py
  $PV $script --questions $QUESTIONS --systems $URLS --blocks $BLOCKS --turns 5 \
    --out $OUT/$c > $OUT/$c.log 2>&1
  echo "load after $c: $(cat /proc/loadavg)" >> $OUT/load.txt
  $PV $KIT/analyze.py $OUT/$c > $OUT/$c-analysis.txt 2>&1
done
for p in $(cat $OUT/pids); do kill $p 2>/dev/null; done

#!/bin/bash
# The peer kit (../shared/peer-bench/README) against this worktree's anima; every PID recorded.
set -u
cd /work/main
OUT=${1:-/work/peer/run1}
mkdir -p $OUT
SP=$(/work/main/.venv/bin/python -c "import site; print(site.getsitepackages()[0])")
PV=/work/.peer-venv/bin/python
KIT=/work/shared/peer-bench
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
ANIMA_VOICE__PREWARM=false PYTHONPATH=$PWD /work/main/.venv/bin/python -m anima.cli --config $OUT/peer.toml serve --port 18865 > $OUT/anima.log 2>&1 & echo $! >> $OUT/pids
ANIMA_SITE_PACKAGES=$SP OMP_NUM_THREADS=2 $PV $KIT/pipecat_server.py --port 18867 --llm-url http://127.0.0.1:18190/v1 --turn vad --tap-log $OUT/vad_taps.jsonl > $OUT/pipecat_vad.log 2>&1 & echo $! >> $OUT/pids
sleep 40
# one core kept busy by another process
$PV -c 'while True: pass' & echo $! >> $OUT/pids
echo "load before: $(cat /proc/loadavg)" > $OUT/load.txt
$PV $KIT/bench_client.py --questions /work/peer/questions.json \
  --systems anima=http://127.0.0.1:18865,pipecat_vad=http://127.0.0.1:18867 \
  --blocks 4 --turns 5 --out $OUT > $OUT/client.log 2>&1
echo "load after: $(cat /proc/loadavg)" >> $OUT/load.txt
$PV $KIT/analyze.py $OUT > $OUT/analysis.txt 2>&1
for p in $(cat $OUT/pids); do kill $p 2>/dev/null; done

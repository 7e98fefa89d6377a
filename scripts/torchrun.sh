#!/bin/bash
# DDP without SLURM: torchrun starts one process per device; run this script once on every node.
#   scripts/torchrun.sh fit                                   # this machine, all its GPUs
#   CONFIG=configs/my_data.yaml scripts/torchrun.sh fit --trainer.max_epochs=200
#   NNODES=2 MASTER_ADDR=node0 scripts/torchrun.sh fit        # the same line on node0 and on node1
#   NPROC_PER_NODE=2 scripts/torchrun.sh fit --trainer.accelerator=cpu   # two CPU processes (gloo)
# The first argument is the subcommand (fit, validate, test, predict); the rest go to the CLI after the configs.
# What to change for your cluster: docs/cluster.md.
set -euo pipefail

COMMAND=${1:-fit}
shift || true
CONFIG=${CONFIG:-configs/default.yaml}   # the model and data config; configs/ddp.yaml is added after it
NNODES=${NNODES:-1}                      # machines taking part
NPROC_PER_NODE=${NPROC_PER_NODE:-gpu}    # processes per machine: a number, or gpu (every visible GPU)
MASTER_ADDR=${MASTER_ADDR:-}             # a host every node reaches (node 0); empty: this machine alone
MASTER_PORT=${MASTER_PORT:-29500}        # a free TCP port on MASTER_ADDR
RDZV_ID=${RDZV_ID:-lightning-lstm}       # the same on all nodes of one run, different between runs

DEVICES=$NPROC_PER_NODE
[[ $DEVICES == gpu ]] && DEVICES=-1
if [[ -z $MASTER_ADDR ]]; then
    RENDEZVOUS=(--standalone)            # one machine: a local rendezvous on a free port
else
    RENDEZVOUS=(--rdzv-backend=c10d --rdzv-endpoint="$MASTER_ADDR:$MASTER_PORT" --rdzv-id="$RDZV_ID")
fi

exec torchrun --nnodes="$NNODES" --nproc-per-node="$NPROC_PER_NODE" "${RENDEZVOUS[@]}" \
    -m lightning_lstm "$COMMAND" \
    --config "$CONFIG" \
    --config configs/ddp.yaml \
    --trainer.num_nodes="$NNODES" \
    --trainer.devices="$DEVICES" \
    "$@"

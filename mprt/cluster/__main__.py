"""`python -m mprt.cluster driver ARGS` (the helper: the Ray driver of a cluster-mode program) and
`python -m mprt.cluster node` (a node runtime, started by its node actor)."""
import json
import sys


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "driver":
        from ._ray import helper_main
        helper_main(json.loads(sys.argv[2]))
    elif what == "node":
        import mprt

        from .node import node_main, setup_node_from_env
        setup_node_from_env()
        mprt.run(node_main)
    else:
        sys.exit("usage: python -m mprt.cluster driver ARGS | node")


if __name__ == "__main__":
    main()

"""Run DAGs with ``dag.test()`` in one process: ``python -m sentinel.dag_runner '[[dag_id, logical, conf], …]'``.

Prints one ``RESULT {json}`` line per run: dag id, logical date, final state and each task
instance's state (mapped ones with their map index). Airflow is imported once for all the
runs. Used by ``sentinel demo --airflow`` and the DAG tests; the environment says which
Airflow (``AIRFLOW_HOME``, ``AIRFLOW__CORE__DAGS_FOLDER``) and which Sentinel home.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys


def main() -> None:
    from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        print(json.dumps({"import_errors": bag.import_errors}), flush=True)
        sys.exit(1)
    for dag_id, logical, conf in json.loads(sys.argv[1]):
        dag = bag.get_dag(dag_id)
        run = dag.test(logical_date=dt.datetime.fromisoformat(logical), run_conf=conf or None)
        tasks = sorted((ti.task_id, ti.map_index, str(ti.state)) for ti in run.get_task_instances())
        out = {"dag_id": dag_id, "logical": logical, "state": str(run.state), "tasks": tasks}
        print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()

"""The code location loads and its asset graph, jobs, schedules and checks are as designed."""

import dagster as dg

from engine_assets.definitions import defs

EDGES = {
    ("coin_universe", "liquidity_ranking"),
    ("liquidity_ranking", "ohlcv"),
    ("ohlcv", "trained_models"),
    ("trained_models", "walk_forward_metrics"),
    ("walk_forward_metrics", "best_models"),
    ("best_models", "shadow_evaluation"),
    ("shadow_evaluation", "brain_library_push"),
}


def _graph():  # type: ignore[no-untyped-def]
    return defs.resolve_asset_graph()


def test_asset_graph_has_the_daily_chain() -> None:
    graph = _graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {
        "coin_universe",
        "liquidity_ranking",
        "ohlcv",
        "trained_models",
        "walk_forward_metrics",
        "best_models",
        "shadow_evaluation",
        "brain_library_push",
        "engine_leaderboard",
        "coin_retrain",
    } <= keys
    for upstream, downstream in EDGES:
        parents = {p.to_user_string() for p in graph.get(dg.AssetKey(downstream)).parent_keys}
        assert upstream in parents, (upstream, downstream)


def test_daily_assets_share_daily_partitions_and_single_run_backfills() -> None:
    graph = _graph()
    for name in ("coin_universe", "trained_models", "brain_library_push"):
        node = graph.get(dg.AssetKey(name))
        assert isinstance(node.partitions_def, dg.DailyPartitionsDefinition)
        assert node.partitions_def.timezone == "UTC"
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
    retrain = graph.get(dg.AssetKey("coin_retrain"))
    assert isinstance(retrain.partitions_def, dg.DynamicPartitionsDefinition)


def test_schedules_run_training_at_0200_utc_and_the_push_has_none() -> None:
    training = defs.resolve_schedule_def("daily_training_schedule")
    assert training.cron_schedule == "0 2 * * *"
    assert training.execution_timezone == "UTC"
    weekly = defs.resolve_schedule_def("weekly_leaderboard_schedule")
    assert weekly.cron_schedule == "0 1 * * 0"
    # issue 13: the push is chained to a successful training run, never on its own clock
    assert {s.name for s in defs.schedules or []} == {
        "daily_training_schedule",
        "weekly_leaderboard_schedule",
    }
    resolved = [defs.resolve_schedule_def(s.name) for s in defs.schedules or []]
    assert {s.job_name for s in resolved} == {"daily_training", "weekly_leaderboard"}


def test_daily_run_sensors_watch_the_daily_jobs_and_chain_the_push() -> None:
    sensors = {s.name: s for s in defs.sensors or []}
    assert set(sensors) == {
        "daily_run_failure_sensor",
        "daily_run_canceled_sensor",
        "daily_run_success_sensor",
        "release_push_after_training",
    }
    for name in (
        "daily_run_failure_sensor",
        "daily_run_canceled_sensor",
        "daily_run_success_sensor",
    ):
        sensor = sensors[name]
        assert isinstance(sensor, dg.RunStatusSensorDefinition), name
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING, name
    chain = sensors["release_push_after_training"]
    assert isinstance(chain, dg.RunStatusSensorDefinition)
    assert chain.job_name == "release_push"
    assert chain.default_status == dg.DefaultSensorStatus.RUNNING
    # which status each one watches, and what it does, is exercised on real runs in
    # tests/integration/engine_assets/test_daily_run_sensors.py (Dagster exposes no public accessor)
    assert all(s.sensor_type.value == "RUN_STATUS" for s in sensors.values())
    assert sensors["daily_run_success_sensor"].required_resource_keys == {"engine_config"}
    jobs = {job.name for job in defs.jobs or []}
    assert {"daily_training", "release_push", "weekly_leaderboard"} <= jobs
    push = defs.resolve_job_def("release_push")
    assert {k.to_user_string() for k in push.asset_layer.executable_asset_keys} == {
        "brain_library_push"
    }


def test_blocking_leakage_checks_are_declared() -> None:
    graph = _graph()
    blocking = {
        key.name
        for key in graph.asset_check_keys
        if graph.get_check_spec(key).blocking  # type: ignore[attr-defined]
    }
    assert {
        "no_train_test_overlap",
        "label_horizon_within_purge",
        "features_causal",
        "features_finite",
        "coin_universe_not_empty",
    } <= blocking

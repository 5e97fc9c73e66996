"""Initial Brain Library schema (every table of trading_core.brain.schema at revision 0001).

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-24 02:58:00.113703
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('engine_reliability',
    sa.Column('coin', sa.String(length=20), nullable=False),
    sa.Column('regime', sa.String(length=16), nullable=False),
    sa.Column('timeframe', sa.String(length=8), nullable=False),
    sa.Column('engine', sa.String(length=64), nullable=False),
    sa.Column('reliability', sa.Float(), nullable=False),
    sa.Column('hit_rate', sa.Float(), nullable=False),
    sa.Column('n_obs', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('coin', 'regime', 'timeframe', 'engine', name=op.f('pk_engine_reliability'))
    )
    op.create_table('liquidity_rankings',
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('liquidity_score', sa.Float(), nullable=False),
    sa.Column('daily_volume_usd', sa.Float(), nullable=False),
    sa.Column('spread_bps', sa.Float(), nullable=False),
    sa.Column('age_days', sa.Integer(), nullable=False),
    sa.Column('selected', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('as_of', 'symbol', name=op.f('pk_liquidity_rankings')),
    sa.UniqueConstraint('as_of', 'rank', name=op.f('uq_liquidity_rankings_as_of_rank'))
    )
    op.create_table('model_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coin', sa.String(length=20), nullable=False),
    sa.Column('regime', sa.String(length=16), nullable=False),
    sa.Column('timeframe', sa.String(length=8), nullable=False),
    sa.Column('last_version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_keys')),
    sa.UniqueConstraint('coin', 'regime', 'timeframe', name=op.f('uq_model_keys_coin_regime_timeframe'))
    )
    op.create_table('model_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('coin', sa.String(length=20), nullable=False),
    sa.Column('regime', sa.String(length=16), nullable=False),
    sa.Column('timeframe', sa.String(length=8), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('stage_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('params_sha256', sa.String(length=64), nullable=False),
    sa.Column('feature_list', sa.JSON(), nullable=False),
    sa.Column('training_data_hash', sa.String(length=128), nullable=False),
    sa.Column('artifact_sha256', sa.String(length=64), nullable=False),
    sa.Column('artifact_uri', sa.Text(), nullable=False),
    sa.Column('artifact_format', sa.String(length=8), nullable=False),
    sa.Column('artifact_size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('partition_date', sa.Date(), nullable=False),
    sa.Column('reliability', sa.JSON(), nullable=True),
    sa.Column('correlation', sa.JSON(), nullable=True),
    sa.CheckConstraint("artifact_format IN ('ubj', 'json')", name=op.f('ck_model_versions_artifact_format')),
    sa.CheckConstraint("stage IN ('candidate', 'shadow', 'production', 'archived')", name=op.f('ck_model_versions_stage')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_model_versions_version_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_versions')),
    sa.UniqueConstraint('coin', 'regime', 'timeframe', 'training_data_hash', 'params_sha256', name='uq_model_versions_identity'),
    sa.UniqueConstraint('coin', 'regime', 'timeframe', 'version', name='uq_model_versions_key_version'),
    sa.UniqueConstraint('name', name=op.f('uq_model_versions_name'))
    )
    op.create_index('ix_model_versions_key_stage', 'model_versions', ['coin', 'regime', 'timeframe', 'stage'], unique=False)
    op.create_index('ix_model_versions_stage', 'model_versions', ['stage'], unique=False)
    op.create_index('ux_model_versions_one_production', 'model_versions', ['coin', 'regime', 'timeframe'], unique=True, sqlite_where=sa.text("stage = 'production'"), postgresql_where=sa.text("stage = 'production'"))
    op.create_index('ux_model_versions_one_shadow', 'model_versions', ['coin', 'regime', 'timeframe'], unique=True, sqlite_where=sa.text("stage = 'shadow'"), postgresql_where=sa.text("stage = 'shadow'"))

    op.create_table('regime_gate_overrides',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('week_start', sa.Date(), nullable=False),
    sa.Column('regime', sa.String(length=16), nullable=False),
    sa.Column('enabled_engines', sa.JSON(), nullable=False),
    sa.Column('disabled_engines', sa.JSON(), nullable=False),
    sa.Column('weight_multipliers', sa.JSON(), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_regime_gate_overrides'))
    )
    op.create_index('ix_regime_gate_overrides_regime_week', 'regime_gate_overrides', ['regime', 'week_start'], unique=False)

    op.create_table('releases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('release_date', sa.Date(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('rollback_of_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('idempotency_sha256', sa.String(length=64), nullable=False),
    sa.Column('gates', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['releases.id'], name=op.f('fk_releases_parent_id_releases')),
    sa.ForeignKeyConstraint(['rollback_of_id'], ['releases.id'], name=op.f('fk_releases_rollback_of_id_releases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_releases')),
    sa.UniqueConstraint('release_date', 'idempotency_sha256', name='uq_releases_date_content')
    )
    op.create_index('ix_releases_release_date', 'releases', ['release_date'], unique=False)

    op.create_table('decision_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('timestamp', sa.DateTime(timezone=True), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('regime', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('consensus_score', sa.Float(), nullable=False),
    sa.Column('expected_edge_bps', sa.Float(), nullable=False),
    sa.Column('costs_bps', sa.Float(), nullable=False),
    sa.Column('net_edge_bps', sa.Float(), nullable=False),
    sa.Column('risk_preset', sa.String(length=32), nullable=False),
    sa.Column('release_id', sa.Integer(), nullable=True),
    sa.Column('shadow', sa.Boolean(), nullable=False),
    sa.Column('model_version', sa.String(length=80), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("action IN ('buy', 'sell', 'hold')", name=op.f('ck_decision_events_action')),
    sa.ForeignKeyConstraint(['release_id'], ['releases.id'], name=op.f('fk_decision_events_release_id_releases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decision_events')),
    sa.UniqueConstraint('event_id', name=op.f('uq_decision_events_event_id'))
    )
    op.create_index('ix_decision_events_release_id', 'decision_events', ['release_id'], unique=False)
    op.create_index('ix_decision_events_symbol_timestamp', 'decision_events', ['symbol', 'timestamp'], unique=False)
    op.create_index('ix_decision_events_timestamp', 'decision_events', ['timestamp'], unique=False)

    op.create_table('release_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('model_version_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.CheckConstraint("role IN ('production', 'shadow')", name=op.f('ck_release_entries_role')),
    sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'], name=op.f('fk_release_entries_model_version_id_model_versions')),
    sa.ForeignKeyConstraint(['release_id'], ['releases.id'], name=op.f('fk_release_entries_release_id_releases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_release_entries')),
    sa.UniqueConstraint('release_id', 'model_version_id', name=op.f('uq_release_entries_release_id_model_version_id'))
    )
    op.create_index('ix_release_entries_model_version_id', 'release_entries', ['model_version_id'], unique=False)

    op.create_table('shadow_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coin', sa.String(length=20), nullable=False),
    sa.Column('regime', sa.String(length=16), nullable=False),
    sa.Column('timeframe', sa.String(length=8), nullable=False),
    sa.Column('challenger_id', sa.Integer(), nullable=False),
    sa.Column('champion_id', sa.Integer(), nullable=True),
    sa.Column('period_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('period_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('challenger_returns', sa.JSON(), nullable=False),
    sa.Column('champion_returns', sa.JSON(), nullable=False),
    sa.Column('statistics', sa.JSON(), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("decision IN ('promote', 'reject', 'continue')", name=op.f('ck_shadow_results_decision')),
    sa.ForeignKeyConstraint(['challenger_id'], ['model_versions.id'], name=op.f('fk_shadow_results_challenger_id_model_versions')),
    sa.ForeignKeyConstraint(['champion_id'], ['model_versions.id'], name=op.f('fk_shadow_results_champion_id_model_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shadow_results')),
    sa.UniqueConstraint('challenger_id', 'period_start', 'period_end', name='uq_shadow_results_period')
    )
    op.create_index('ix_shadow_results_key_period_end', 'shadow_results', ['coin', 'regime', 'timeframe', 'period_end'], unique=False)

    op.create_table('stage_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_version_id', sa.Integer(), nullable=False),
    sa.Column('from_stage', sa.String(length=16), nullable=True),
    sa.Column('to_stage', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('statistics', sa.JSON(), nullable=True),
    sa.CheckConstraint("to_stage IN ('candidate', 'shadow', 'production', 'archived')", name=op.f('ck_stage_history_to_stage')),
    sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'], name=op.f('fk_stage_history_model_version_id_model_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stage_history'))
    )
    op.create_index('ix_stage_history_model_at', 'stage_history', ['model_version_id', 'at'], unique=False)

    op.create_table('trade_outcomes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('fill_price', sa.Float(), nullable=False),
    sa.Column('pnl_usd', sa.Float(), nullable=False),
    sa.Column('fees_usd', sa.Float(), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['event_id'], ['decision_events.event_id'], name=op.f('fk_trade_outcomes_event_id_decision_events')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trade_outcomes')),
    sa.UniqueConstraint('event_id', name=op.f('uq_trade_outcomes_event_id'))
    )


def downgrade() -> None:
    op.drop_table('trade_outcomes')
    op.drop_index('ix_stage_history_model_at', table_name='stage_history')

    op.drop_table('stage_history')
    op.drop_index('ix_shadow_results_key_period_end', table_name='shadow_results')

    op.drop_table('shadow_results')
    op.drop_index('ix_release_entries_model_version_id', table_name='release_entries')

    op.drop_table('release_entries')
    op.drop_index('ix_decision_events_timestamp', table_name='decision_events')
    op.drop_index('ix_decision_events_symbol_timestamp', table_name='decision_events')
    op.drop_index('ix_decision_events_release_id', table_name='decision_events')

    op.drop_table('decision_events')
    op.drop_index('ix_releases_release_date', table_name='releases')

    op.drop_table('releases')
    op.drop_index('ix_regime_gate_overrides_regime_week', table_name='regime_gate_overrides')

    op.drop_table('regime_gate_overrides')
    op.drop_index('ux_model_versions_one_shadow', table_name='model_versions')
    op.drop_index('ux_model_versions_one_production', table_name='model_versions')
    op.drop_index('ix_model_versions_stage', table_name='model_versions')
    op.drop_index('ix_model_versions_key_stage', table_name='model_versions')

    op.drop_table('model_versions')
    op.drop_table('model_keys')
    op.drop_table('liquidity_rankings')
    op.drop_table('engine_reliability')

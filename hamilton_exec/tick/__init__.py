"""One call per closed bar: the engine, newest-bar preparation, forecasts, decisions, shadow
books."""

"""How the architect's numbers, plans and charts read to a person: pure functions the
admin pages of every app, the reports and the template filters share (no models, no
database), so `optimizations` and `nlsql` show them without reaching into the agent."""

package clickhouse

// crashGroupChangesMigration returns the migration, numbered version,
// that creates crash_group_changes: the assignees, notes and merges of
// crash groups. Merges are read and applied by the dashboard, so the
// aggregates need no rewrite.
func crashGroupChangesMigration(version int) Migration {
	return Migration{
		Version:    version,
		Name:       "crash_group_changes: assignees, notes and merges of crash groups",
		Statements: createTables(func(s *schema) []*tableDef { return []*tableDef{s.crashChanges.def} }),
	}
}

"""What the operators and the sensor share above the hooks: the task's hook and deferral, the
exactly-once rules of the create operators, and their OpenLineage.
"""

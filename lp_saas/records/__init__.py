"""Records kept by school units: basic data (cadre roles, clubs, attendance, confirmations) and
course records (grades, course counselling, elective choices)."""

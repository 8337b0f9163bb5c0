-- One shelter class's planning figures.
SELECT class, m2_per_person, service_radius_m, min_effective_area_m2 FROM shelter_classes WHERE class = %(class)s

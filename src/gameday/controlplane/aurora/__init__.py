"""Aurora global database emulation: models (transitions on moto's RDS state) and the RDS transport."""

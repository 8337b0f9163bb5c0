-- Crosswalk between layer %(a)s and layer %(b)s: each pair of overlapping cells, both directions.
-- Works on the subdivided pieces (≤ 64 vertices each): intersecting a small cell with a whole
-- district outline of thousands of vertices is what makes a naive overlay slow. Pieces of one
-- cell do not overlap, so summing piece-pair areas gives the cell-pair area.
WITH piece_pairs AS (
    SELECT pa.cell_id AS id_a, pb.cell_id AS id_b,
           sum(CASE
                   WHEN ST_CoveredBy(pa.geom, pb.geom) THEN ST_Area(ST_Transform(pa.geom, %(srid)s::int))
                   WHEN ST_CoveredBy(pb.geom, pa.geom) THEN ST_Area(ST_Transform(pb.geom, %(srid)s::int))
                   ELSE ST_Area(ST_Transform(ST_Intersection(pa.geom, pb.geom), %(srid)s::int))
               END) AS area
    FROM cell_pieces pa
    JOIN cell_pieces pb ON pb.layer = %(b)s AND pa.geom && pb.geom AND ST_Intersects(pa.geom, pb.geom)
    WHERE pa.layer = %(a)s
    GROUP BY pa.cell_id, pb.cell_id
),
kept AS (
    SELECT a.code AS code_a, b.code AS code_b, a.area_m2 AS area_a, b.area_m2 AS area_b, p.area
    FROM piece_pairs p
    JOIN cells a ON a.id = p.id_a
    JOIN cells b ON b.id = p.id_b
    WHERE p.area > %(noise_m2)s
)
INSERT INTO cell_overlaps (layer, code, other_layer, other_code, area_m2, share, other_share)
SELECT %(a)s, code_a, %(b)s, code_b, area, least(area / nullif(area_a, 0), 1), least(area / nullif(area_b, 0), 1)
FROM kept
UNION ALL
SELECT %(b)s, code_b, %(a)s, code_a, area, least(area / nullif(area_b, 0), 1), least(area / nullif(area_a, 0), 1)
FROM kept

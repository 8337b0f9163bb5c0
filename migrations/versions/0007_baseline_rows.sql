-- The reference rows migrations 0001-0007 wrote, as they left them: layers, risk categories,
-- assessment thresholds, shelter classes, warning due times and rules.

-- The layers every deployment has; grids are filled by import or the demo build.
INSERT INTO layers (name, kind, title, description) VALUES
    ('district', 'admin', 'Districts (区)', 'Administrative districts'),
    ('street', 'admin', 'Streets and towns (街镇)', 'Administrative streets/towns'),
    ('community', 'admin', 'Communities (社区)', 'Administrative communities'),
    ('comprehensive', 'grid', 'Comprehensive grid (综合网格)', 'Social-governance grid'),
    ('emergency', 'grid', 'Emergency grid (应急格)', 'Cells that organise emergency response'),
    ('safety', 'grid', 'Safety-supervision grid (安监格)', 'Cells for safety inspection');

INSERT INTO risk_categories (code, name, name_en) VALUES
    ('hazardous_chemicals', '危险化学品', 'Hazardous chemicals'),
    ('gas', '燃气', 'Gas stations and pipelines'),
    ('construction_site', '建筑工地', 'Construction site'),
    ('crowded_place', '人员密集场所', 'Crowded place'),
    ('special_equipment', '特种设备', 'Special equipment'),
    ('tailings_pond', '尾矿库', 'Tailings pond'),
    ('fireworks', '烟花爆竹', 'Fireworks'),
    ('dust_explosion', '粉尘涉爆', 'Dust explosion'),
    ('ammonia_refrigeration', '涉氨制冷', 'Ammonia refrigeration'),
    ('confined_space', '有限空间', 'Confined space'),
    ('road_water_transport', '道路水路运输', 'Road and water transport'),
    ('other', '其他', 'Other');

-- SPEC.md defaults. LEC: D > 320 red, 160 < D <= 320 orange, 70 < D <= 160 yellow, else blue.
-- Risk matrix: R >= 20 red, 15-16 orange, 9-12 yellow, R <= 8 blue.
INSERT INTO assessment_thresholds (method, level, min_score, min_inclusive) VALUES
    ('LEC', 'red', 320, false), ('LEC', 'orange', 160, false), ('LEC', 'yellow', 70, false),
    ('LS', 'red', 20, true), ('LS', 'orange', 15, true), ('LS', 'yellow', 9, true);

-- SPEC.md defaults: emergency 500 m and 1 m2/person; fixed 2.5 km and 2 m2 (short stay); central
-- serves ~50 km2 (a radius of ~4 km) at 4.5 m2/person. Sites should exceed 2,000 m2.
INSERT INTO shelter_classes (class, name, service_radius_m, m2_per_person) VALUES
    ('emergency', '紧急避难场所', 500, 1), ('fixed', '固定避难场所', 2500, 2), ('central', '中心避难场所', 3990, 4.5);

INSERT INTO warning_due_times (level, due_minutes) VALUES ('red', 60), ('orange', 120), ('yellow', 360), ('blue', 1440);

-- Which targets each hazard exposes: hazard points by kind, risk sources by category. Lightning
-- ignites flammable stores and short downpours flood low points; heat raises vapour pressure in
-- chemical and pyrotechnic stores and strains crowded venues. `other` exposes nothing until an
-- admin says what it should. At red, people threatened by dangerous buildings and geological
-- hazards are evacuated; every other target is patrolled with the evacuation orange prepared
-- kept ready (an action never weakens as the level rises).
INSERT INTO warning_rules
    (hazard_type, target_type, target_kind, action_blue, action_yellow, action_orange, action_red)
SELECT hazard, target_type, kind, 'notify', 'notify_patrol', 'patrol_prepare_evacuation',
       CASE WHEN target_type = 'hazard_point'
                 AND kind IN ('dangerous_building', 'landslide', 'collapse', 'debris_flow', 'ground_subsidence')
            THEN 'evacuate' ELSE 'patrol_prepare_evacuation' END
FROM (VALUES
    ('{rainstorm,flood}', 'hazard_point',
     '{waterlogging,landslide,collapse,debris_flow,ground_subsidence,dangerous_building}'),
    ('{rainstorm,flood}', 'risk_source', '{construction_site,tailings_pond}'),
    ('{typhoon,gale,hail}', 'risk_source', '{construction_site,crowded_place}'),
    ('{typhoon,gale,hail,cold_wave,snow,earthquake}', 'hazard_point', '{dangerous_building}'),
    ('{thunderstorm}', 'risk_source', '{hazardous_chemicals,fireworks,construction_site,crowded_place}'),
    ('{thunderstorm}', 'hazard_point', '{waterlogging}'),
    ('{heat}', 'risk_source', '{hazardous_chemicals,crowded_place,fireworks}'),
    ('{cold_wave,snow}', 'risk_source', '{gas}'),
    ('{fog}', 'risk_source', '{road_water_transport}'),
    ('{geological,earthquake}', 'hazard_point', '{landslide,collapse,debris_flow,ground_subsidence}'),
    ('{geological,earthquake}', 'risk_source', '{tailings_pond}'),
    ('{earthquake}', 'risk_source', '{hazardous_chemicals,gas,crowded_place}')
) AS r (hazards, target_type, kinds),
    unnest(hazards::text[]) AS hazard, unnest(kinds::text[]) AS kind;

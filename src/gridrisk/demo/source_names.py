"""What Nanjing's risk sources are called: roads, name words, industries, site kinds, departments.

Data only, drawn on by the risk-source demo generator (demo/sources.py); Chinese as the register has it.
"""

from __future__ import annotations

# A few real street names per district, so addresses read right (江北大道 is not in 鼓楼).
_ROAD_NAMES = {
    "320102": "中山路 北京东路 龙蟠中路 玄武大道 珠江路 长江路 太平北路",
    "320104": "中山南路 太平南路 洪武路 升州路 集庆路 中华路 龙蟠南路",
    "320105": "江东中路 河西大街 应天大街 集庆门大街 奥体大街 庐山路",
    "320106": "中山北路 北京西路 虎踞路 广州路 汉中路 新模范马路 中央路",
    "320111": "浦珠路 浦口大道 江北大道 文德路 丽岛路 浦六路",
    "320113": "栖霞大道 仙林大道 尧化门街 恒通大道 和燕路 龙潭港路",
    "320114": "雨花大道 软件大道 宁丹路 凤信路 铁心桥街",
    "320115": "天印大道 双龙大道 将军大道 秣陵路 胜太路 诚信大道",
    "320116": "宁六路 雄州南路 大厂新华路 葛关路 龙池路 园西路",
    "320117": "溧水大道 珍珠南路 秦淮大道 天生桥大道",
    "320118": "宝塔路 镇兴路 石臼湖路 北岭路 淳溪路",
}
ROADS = {district: tuple(names.split()) for district, names in _ROAD_NAMES.items()}
ANY_ROADS = tuple(r for roads in ROADS.values() for r in roads)
NAME_WORDS = (
    "金陵 扬子 钟山 紫金 石城 江北 长江 华宁 宁港 瑞达 恒通 鑫源 华泰 中联 德润 永安 东方 天润 宏达 安泰 "
    "宁华 苏宁 新港 汇通 金浦 龙潭 雨润 丰华 科润 大江 盛世 中宁 华欣 远航 润泽 宏图 宁隆 嘉盛 奥特 福瑞"
).split()
INDUSTRY = {
    "hazardous_chemicals": ("化工", "石化", "精细化工", "新材料科技", "化学品储运"),
    "gas": ("燃气", "石油销售", "能源"),
    "construction_site": ("建设工程", "建筑安装", "市政工程", "城建集团"),
    "crowded_place": ("商业管理", "文化旅游", "物业管理", "酒店管理"),
    "special_equipment": ("机械制造", "重工", "钢结构", "热电"),
    "tailings_pond": ("矿业", "矿产开发"),
    "fireworks": ("烟花爆竹经营", "商贸"),
    "dust_explosion": ("木业", "金属制品", "粮油加工", "铝业"),
    "ammonia_refrigeration": ("冷链物流", "食品", "水产"),
    "confined_space": ("水务", "排水管理", "环境工程"),
    "road_water_transport": ("危险品运输", "港务", "物流", "航运"),
    "other": ("仓储", "实业", "科技"),
}
SITE_KINDS = {
    "hazardous_chemicals": ("储罐区", "危化品仓库", "装卸站台", "生产装置区", "罐区"),
    "gas": ("加油站", "加气站", "燃气调压站", "液化石油气供应站"),
    "construction_site": (
        "安置房项目工地",
        "商业综合体项目工地",
        "地铁站点工程",
        "道路改造工程",
        "学校新建工程",
    ),
    "crowded_place": ("购物中心", "农贸市场", "体育馆", "影剧院", "汽车客运站", "医院门诊楼"),
    "special_equipment": ("锅炉房", "起重机械", "压力容器区", "电梯群"),
    "tailings_pond": ("尾矿库",),
    "fireworks": ("烟花爆竹仓库", "烟花爆竹零售点"),
    "dust_explosion": ("抛光车间", "木制品加工车间", "粉碎车间", "除尘系统"),
    "ammonia_refrigeration": ("氨制冷冷库",),
    "confined_space": ("污水井", "化粪池", "地下综合管廊", "污水处理站"),
    "road_water_transport": ("危货运输停车场", "码头", "货运站场"),
    "other": ("仓储物流园", "厂房", "配电房"),
}
GAS_OPERATORS = (
    "中国石化销售股份有限公司江苏南京石油分公司",
    "中国石油天然气股份有限公司江苏南京销售分公司",
    "南京港华燃气有限公司",
)
DEPARTMENTS = {
    "hazardous_chemicals": "应急管理局",
    "gas": "城市管理局（燃气管理处）",
    "construction_site": "住房和城乡建设局",
    "crowded_place": "商务局",
    "special_equipment": "市场监督管理局",
    "tailings_pond": "应急管理局",
    "fireworks": "应急管理局",
    "dust_explosion": "应急管理局",
    "ammonia_refrigeration": "应急管理局",
    "confined_space": "水务局",
    "road_water_transport": "交通运输局",
    "other": "应急管理局",
}
DIRECT_REASONS = (
    "经区应急管理局认定为重大危险源，直接定级",
    "属地监管部门专项评估后确定风险等级",
    "结合历史事故及周边敏感目标综合研判定级",
    "专家会商意见，按上级文件要求直接定级",
)

/* gridrisk web map: what the page says, in Chinese (the default) and English. Words for the API's
   codes (colours, statuses, kinds) come from GET /vocabulary; this file holds the page's own text.
   The language is kept in localStorage; `#lang=en` (or zh) in the address picks it for a link. */
(() => {
  'use strict';

  const STRINGS = {
    zh: {
      'page.title': 'gridrisk — 安全风险四色图',
      'page.sub': '安全风险四色图',
      'lang.switch': 'English',
      'lang.switch.label': 'Switch to English',
      'panel.toggle': '图层与图例',
      'panel.label': '地图控制',
      'map.label': '安全风险四色图',
      'grid.heading': '网格',
      'grid.layer': '图层',
      'legend.label': '各颜色网格数',
      'legend.cells': '网格总数',
      'grid.zoom': '放大地图以显示网格。',
      'export': '导出图片',
      'warnings.heading': '预警',
      'warnings.label': '生效中的预警',
      'warnings.hide': '隐藏',
      'warnings.legend': '预警区域按预警级别着色，工单按状态着色：',
      'warnings.resources': '{team} 救援队伍，{depot} 物资储备库，虚线：至处置对象',
      'warnings.none': '暂无生效中的预警。',
      'warnings.unreadable': '预警读取失败：{error}',
      'warnings.item': '{hazard} · 工单 {total} 个，未完成 {unfinished}，已办结 {done}',
      'warnings.item.overdue': '，超时 {overdue}',
      'warnings.missing': '没有编号为 {id} 的预警。',
      'warnings.untitled': '预警 {id}',
      'orders.count': '工单 {n} 个。',
      'orders.none': '无工单：该区域内没有受威胁的对象。',
      'orders.needKey': '查看工单需要值班员或网格员密钥：请在下方“API 密钥”中输入。',
      'orders.keyCannot': '该密钥无权查看工单（{error}）：请在下方“API 密钥”中输入值班员或网格员密钥。',
      'orders.unreadable': '工单读取失败：{error}',
      'report.unreadable': '响应报告读取失败：{error}',
      'report.title': '响应报告',
      'report.orders': '工单',
      'report.orders.value': '{orders} 个（已办结 {done}，处置中 {in_progress}，待接收 {open}）',
      'report.overdue': '超时',
      'report.ack': '接收用时 p50/p90',
      'report.finish': '办结用时 p50/p90',
      'report.minutes': '{p50} / {p90} 分钟',
      'report.evacuation': '转移',
      'report.evacuation.value': '计划 {planned} 人，已转移 {evacuated}，已预留安置 {placed}',
      'report.evacuation.without': '，无安置 {n}',
      'report.teams': '救援队伍',
      'report.teams.value': '调派 {committed}，在岗 {deployed}',
      'report.supplies': '物资',
      'report.supplies.value': '{units} 件，来自 {depots} 个储备库',
      'report.csv': '导出 CSV',
      'feature.risk_sources': '风险源',
      'feature.shelters': '避难场所',
      'feature.hazard_points': '隐患点',
      'resource.team': '救援队伍',
      'resource.depot': '物资储备库',
      'overlays.heading': '叠加图层',
      'overlays.risk_sources': '风险源',
      'overlays.shelters': '避难场所',
      'overlays.shelters.size': '（大小表示容量）',
      'overlays.hazard_points': '隐患点',
      'overlays.districts': '区界',
      'where.heading': '我在哪个网格',
      'where.locate': '使用我的位置',
      'where.lon': '经度',
      'where.lat': '纬度',
      'where.find': '查询',
      'where.looking': '查询中…',
      'where.outside': '该点不在本市范围内。',
      'where.cellsHere': '所在网格',
      'where.noCell': '{layer}：此处无网格',
      'where.district': '所在区：{name}（{code}）',
      'where.counted': '{code} 内计入的风险源：',
      'where.worker': '网格员：',
      'where.sources': '{code} 内的风险源',
      'where.hazards': '{code} 内的隐患点',
      'where.none': '无',
      'where.unreadable': '读取失败',
      'where.more': '另有 {n} 个',
      'where.shelters': '最近的避难场所（已开放或待启用）',
      'where.shelter': ' — {distance} 米，空余 {free} 个，{status}（{class}）',
      'where.badInput': '请输入经度（−180…180）和纬度（−90…90），单位为度，WGS 84 坐标。',
      'where.noGeo': '此浏览器无法在这里获取位置（需要 HTTPS），请手动输入坐标。',
      'where.locating': '定位中…',
      'where.noFix': '无法定位：{error}。请手动输入坐标。',
      'key.summary': 'API 密钥',
      'key.about': '仅当服务不允许公开读取时需要。只保存在当前标签页中。',
      'key.label': '密钥',
      'key.use': '使用密钥',
      'about.map': '地图：',
      'about.api': '接口文档',
      'live.connecting': '连接中…',
      'live.on': '实时',
      'live.reconnecting': '重新连接中…',
      'live.needsKey': '实时更新需要密钥',
      'live.offline': '离线 — 正在重试',
      'live.keyNeeded': '需要 API 密钥',
      'live.error': '出错：{error}',
      loading: '加载中…',
      'cell.name': '名称',
      'cell.colour': '颜色',
      'cell.pinned': '人工设定',
      'cell.pinnedBy': '，由 {by} 设定：{reason}',
      'cell.computed': '计算颜色',
      'cell.sources': '风险源',
      'cell.population': '人口',
      'cell.district': '所在区',
      'cell.workers': '网格员',
      'cell.noWorkers': '未配置',
      'f.level': '等级',
      'f.override': '（人工调整：{reason}）',
      'f.status': '状态',
      'f.category': '类别',
      'f.assessment': '评估',
      'f.assessment.direct': '直接判定：{reason}',
      'f.enterprise': '企业',
      'f.department': '主管部门',
      'f.address': '地址',
      'f.plate': '风险告知牌',
      'f.cells': '所在网格',
      'f.class': '类别',
      'f.capacity': '容量',
      'f.occupancy': '已安置',
      'f.free': '空余',
      'f.area': '有效面积',
      'f.facilities': '设施',
      'f.managedBy': '管理单位',
      'f.warnings': '提示',
      'f.kind': '类型',
      'f.threatened': '受威胁',
      'f.persons': '{n} 人',
      'f.responsible': '责任人',
      'f.notes': '备注',
      'o.title': '工单 {id}',
      'o.action': '处置要求',
      'o.target': '处置对象',
      'o.status': '状态',
      'o.due': '时限',
      'o.overdue': ' — 已超时',
      'o.cell': '网格',
      'o.outside': '不在任何网格内',
      'o.assigned': '接单人',
      'o.nobody': '无（该网格没有网格员）',
      'o.shelter': '避难场所',
      'o.shelter.value': '{name} — {distance} 米，空余 {free} 个（{status}）',
      'o.shelter.none': '未找到',
      'o.places': '安置',
      'o.responsible': '负责',
      'o.teams': '队伍',
      'o.supplies': '物资',
      'o.notBooked': '缺口',
      'unit.persons': '人',
    },
    en: {
      'page.title': 'gridrisk — four-colour risk map',
      'page.sub': 'four-colour risk map',
      'lang.switch': '中文',
      'lang.switch.label': '切换到中文',
      'panel.toggle': 'Layers & legend',
      'panel.label': 'Map controls',
      'map.label': 'Four-colour risk map',
      'grid.heading': 'Grid',
      'grid.layer': 'Layer',
      'legend.label': 'Cells per colour',
      'legend.cells': 'Cells',
      'grid.zoom': 'Zoom in to see the cells.',
      'export': 'Export image',
      'warnings.heading': 'Warnings',
      'warnings.label': 'Active warnings',
      'warnings.hide': 'Hide',
      'warnings.legend': 'Area coloured by the warning level; work orders by status:',
      'warnings.resources': '{team} rescue team, {depot} supply depot, dashed: to the target',
      'warnings.none': 'No active warning.',
      'warnings.unreadable': 'Warnings could not be read: {error}',
      'warnings.item': '{hazard} · {total} orders, {unfinished} unfinished, {done} done',
      'warnings.item.overdue': ', {overdue} overdue',
      'warnings.missing': 'There is no warning {id}.',
      'warnings.untitled': 'Warning {id}',
      'orders.count': '{n} work orders.',
      'orders.none': 'No work order: no exposed target in this area.',
      'orders.needKey': 'Work orders need an operator or grid-worker key: enter it under “API key” below.',
      'orders.keyCannot': 'This key cannot read work orders ({error}): enter an operator or grid-worker key under “API key” below.',
      'orders.unreadable': 'Work orders could not be read: {error}',
      'report.unreadable': 'The report could not be read: {error}',
      'report.title': 'Response report',
      'report.orders': 'Orders',
      'report.orders.value': '{orders} ({done} done, {in_progress} in progress, {open} open)',
      'report.overdue': 'Overdue',
      'report.ack': 'To acknowledge p50/p90',
      'report.finish': 'To finish p50/p90',
      'report.minutes': '{p50} / {p90} min',
      'report.evacuation': 'Evacuation',
      'report.evacuation.value': '{planned} planned, {evacuated} evacuated, {placed} with reserved places',
      'report.evacuation.without': ', {n} without a place',
      'report.teams': 'Teams',
      'report.teams.value': '{committed} committed, {deployed} deployed',
      'report.supplies': 'Supplies',
      'report.supplies.value': '{units} units from {depots} depots',
      'report.csv': 'Download CSV',
      'feature.risk_sources': 'Risk source',
      'feature.shelters': 'Shelter',
      'feature.hazard_points': 'Hazard point',
      'resource.team': 'Rescue team',
      'resource.depot': 'Supply depot',
      'overlays.heading': 'Overlays',
      'overlays.risk_sources': 'Risk sources',
      'overlays.shelters': 'Shelters',
      'overlays.shelters.size': ' (size: capacity)',
      'overlays.hazard_points': 'Hazard points',
      'overlays.districts': 'District boundaries',
      'where.heading': 'Where am I',
      'where.locate': 'Use my location',
      'where.lon': 'Longitude',
      'where.lat': 'Latitude',
      'where.find': 'Find',
      'where.looking': 'Looking up…',
      'where.outside': 'This point is outside the city.',
      'where.cellsHere': 'Cells here',
      'where.noCell': '{layer}: no cell here',
      'where.district': 'District: {name} ({code})',
      'where.counted': 'Sources counted in {code}: ',
      'where.worker': 'Grid worker: ',
      'where.sources': 'Risk sources in {code}',
      'where.hazards': 'Hazard points in {code}',
      'where.none': 'none',
      'where.unreadable': 'could not be read',
      'where.more': 'and {n} more',
      'where.shelters': 'Nearest shelters (open or standby)',
      'where.shelter': ' — {distance} m, {free} free, {status} ({class})',
      'where.badInput': 'Type a longitude (−180…180) and a latitude (−90…90) in degrees, WGS 84.',
      'where.noGeo': 'This browser cannot give a location here (it needs HTTPS); type a coordinate instead.',
      'where.locating': 'Locating…',
      'where.noFix': 'No location: {error}. Type a coordinate instead.',
      'key.summary': 'API key',
      'key.about': 'Only needed when the service does not allow public reads. Kept in this tab only.',
      'key.label': 'Key',
      'key.use': 'Use key',
      'about.map': 'Map: ',
      'about.api': 'API',
      'live.connecting': 'connecting…',
      'live.on': 'live',
      'live.reconnecting': 'reconnecting…',
      'live.needsKey': 'live updates need a key',
      'live.offline': 'offline — retrying',
      'live.keyNeeded': 'needs an API key',
      'live.error': 'error: {error}',
      loading: 'Loading…',
      'cell.name': 'Name',
      'cell.colour': 'Colour',
      'cell.pinned': 'Pinned',
      'cell.pinnedBy': ' by {by}: {reason}',
      'cell.computed': 'Computed',
      'cell.sources': 'Sources',
      'cell.population': 'Population',
      'cell.district': 'District',
      'cell.workers': 'Workers',
      'cell.noWorkers': 'none assigned',
      'f.level': 'Level',
      'f.override': ' (override: {reason})',
      'f.status': 'Status',
      'f.category': 'Category',
      'f.assessment': 'Assessment',
      'f.assessment.direct': 'set directly: {reason}',
      'f.enterprise': 'Enterprise',
      'f.department': 'Department',
      'f.address': 'Address',
      'f.plate': 'Plate',
      'f.cells': 'Cells',
      'f.class': 'Class',
      'f.capacity': 'Capacity',
      'f.occupancy': 'Occupancy',
      'f.free': 'Free places',
      'f.area': 'Effective area',
      'f.facilities': 'Facilities',
      'f.managedBy': 'Managed by',
      'f.warnings': 'Warnings',
      'f.kind': 'Kind',
      'f.threatened': 'Threatened',
      'f.persons': '{n} persons',
      'f.responsible': 'Responsible',
      'f.notes': 'Notes',
      'o.title': 'Work order {id}',
      'o.action': 'Action',
      'o.target': 'Target',
      'o.status': 'Status',
      'o.due': 'Due',
      'o.overdue': ' — overdue',
      'o.cell': 'Cell',
      'o.outside': 'outside every cell',
      'o.assigned': 'Assigned',
      'o.nobody': 'nobody (no worker in the cell)',
      'o.shelter': 'Shelter',
      'o.shelter.value': '{name} — {distance} m, {free} free ({status})',
      'o.shelter.none': 'none found',
      'o.places': 'Places',
      'o.responsible': 'Responsible',
      'o.teams': 'Teams',
      'o.supplies': 'Supplies',
      'o.notBooked': 'Not booked',
      'unit.persons': 'persons',
    },
  };

  const LANGS = Object.keys(STRINGS);

  /** The language asked for by the address, else the one kept, else Chinese. */
  function pickLang() {
    const asked = new URLSearchParams(location.hash.slice(1)).get('lang');
    if (LANGS.includes(asked)) {
      localStorage.setItem('gridrisk.lang', asked);
      return asked;
    }
    const kept = localStorage.getItem('gridrisk.lang');
    return LANGS.includes(kept) ? kept : 'zh';
  }

  const lang = pickLang();
  let vocab = {};

  /** The page's text KEY in the current language, with {name} replaced from VARS. */
  function t(key, vars) {
    const text = STRINGS[lang][key] ?? STRINGS.zh[key] ?? key;
    return vars ? text.replace(/\{(\w+)\}/g, (m, k) => (vars[k] ?? m)) : text;
  }

  /** The word for CODE in the vocabulary SET (GET /vocabulary), or the code itself. */
  function label(set, code) {
    if (code === null || code === undefined) return code;
    return vocab[set]?.[code]?.[lang] ?? String(code).replace(/_/g, ' ');
  }

  /** A layer's title in the current language: "Comprehensive grid (综合网格)" has both. */
  function title(text) {
    const m = /^(.*?)\s*[(（]([^)）]+)[)）]\s*$/.exec(text || '');
    if (!m) return text;
    const cjk = /[\u4e00-\u9fff]/;
    const [zh, en] = cjk.test(m[2]) ? [m[2], m[1]] : [m[1], m[2]];
    return lang === 'zh' ? zh : en;
  }

  /** Write the page's fixed text: [data-i18n] (text), [data-i18n-aria] and [data-i18n-title]
      (attributes), [data-vocab="set:code"] (a vocabulary word). */
  function translatePage(root = document) {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.title = t('page.title');
    for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const el of root.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
    for (const el of root.querySelectorAll('[data-i18n-title]')) el.setAttribute('title', t(el.dataset.i18nTitle));
    for (const el of root.querySelectorAll('[data-vocab]')) {
      const [set, code] = el.dataset.vocab.split(':');
      el.textContent = label(set, code);
    }
  }

  /** Switch language: kept for the next visit, then the page reloads (the layer and warning shown
      stay in the address). */
  function switchLang() {
    const next = lang === 'zh' ? 'en' : 'zh';
    localStorage.setItem('gridrisk.lang', next);
    const params = new URLSearchParams(location.hash.slice(1));
    params.delete('lang');
    history.replaceState(null, '', `#${params.toString()}`);
    location.reload();
  }

  window.gridriskI18n = {
    lang,
    t,
    label,
    title,
    translatePage,
    switchLang,
    setVocabulary: (v) => { vocab = v || {}; },
    locale: lang === 'zh' ? 'zh-CN' : 'en',
  };
})();
